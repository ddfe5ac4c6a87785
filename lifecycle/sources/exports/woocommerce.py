"""WooCommerce's CSV exports from the official "Customer / Order / Coupon Export" extension (WooCommerce → Export,
the built-in "Default" CSV formats; WooCommerce core's Analytics downloads carry no emails or ids and are not read).

Its column names are the format's keys, which the extension guarantees never to change (developer documentation):
- customers: customer_id (0 for a guest, who is listed from their order), first_name, last_name, email,
  date_registered, billing_* and shipping_* address fields;
- orders ("Default", one row per order; "Default - One Row per Item" repeats the order's fields on each item's row:
  rows are grouped by order_id): order_id, order_number, date, status, order_total, refunded_total, order_currency,
  customer_id (0: a guest, known by billing_email), billing_email, billing_first_name, billing_last_name, …

Times are the site's local time without an offset (2024-03-01 14:05:00): they are read in the time zone the import is
given (the WordPress site's, Settings → General → Timezone). Statuses, guests and refunds follow the REST API's
mapping (`lifecycle.sources.woocommerce`), so a shop imported by CSV and by its API history gives the same records.
"""

from collections.abc import Iterator
from decimal import Decimal

from lifecycle.sources.exports.common import (
    ExportChunk,
    Layout,
    ReadContext,
    currency_check,
    grouped,
    order_lines,
    positive,
    read_rows,
)
from lifecycle.sources.exports.reading import CellError, Row, decimal_value, time_value
from lifecycle.sources.records import ShopCustomer, ShopOrder, guest_customer_id
from lifecycle.sources.woocommerce import ANONYMISED_EMAIL, CANCELLED_STATUSES, REFUNDED_STATUS

DOCS = "https://woocommerce.com/document/ordercustomer-csv-exporter/"
DOCS_COLUMNS = "https://woocommerce.com/document/ordercustomer-csv-export-developer-documentation/"
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
DATE_COLUMNS = ("date", "order_date")  # the column key is order_date, its default name "date"


def _user_id(row: Row) -> int:
    text = row.get("customer_id") or "0"
    if not text.isdigit():
        raise CellError("customer_id", f"{text!r} is not a WooCommerce user id (digits; 0 for a guest)")
    return int(text)


def _email(row: Row, column: str) -> str:
    email = row.get(column)
    return "" if email.lower() == ANONYMISED_EMAIL else email


def _name(row: Row, prefix: str = "") -> str:
    return " ".join(part for part in (row.get(f"{prefix}first_name"), row.get(f"{prefix}last_name")) if part)


def read_customers(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        user_id = _user_id(row)
        email = _email(row, "email") or _email(row, "billing_email")
        if not user_id and not email:
            raise CellError("email", "a guest without an email cannot be told from other guests")
        registered = row.get("date_registered")
        customer = ShopCustomer(
            id=str(user_id) if user_id else guest_customer_id(email),
            email=email,
            name=_name(row) or _name(row, "billing_"),
            created_at=time_value(row, "date_registered", formats=TIME_FORMATS, zone=context.zone)
            if registered
            else None,
        )
        if user_id and email:
            context.customer_ids[email.lower()] = customer.id
        chunk.customer_add(customer, row.line)

    return read_rows(((row, 1) for row in rows), read)


def read_orders(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        order_id = row.required("order_id")
        currency = row.required("order_currency")
        currency_check(context.source, currency, "order_currency")
        date_column = next((column for column in DATE_COLUMNS if row.has(column)), DATE_COLUMNS[0])
        placed_at = time_value(row, date_column, formats=TIME_FORMATS, zone=context.zone)
        status = row.get("status").removeprefix("wc-")
        total = positive(decimal_value(row, "order_total"), "order_total")
        refunded = positive(decimal_value(row, "refunded_total", default=Decimal(0)), "refunded_total")
        if status == REFUNDED_STATUS:  # marked refunded by hand, without refund records: still a full refund
            refunded = max(refunded, total)
        email = _email(row, "billing_email")
        user_id = _user_id(row)
        # As the API mapping: the billing details are the customer's as of the order; a newer customer record wins.
        customer = (
            ShopCustomer(id=str(user_id), email=email, name=_name(row, "billing_"), updated_at=placed_at)
            if user_id
            else None
        )
        chunk.batch.orders.append(
            ShopOrder(
                id=order_id,
                placed_at=placed_at,
                currency=currency,
                total=total,
                refunded=refunded,
                status=status,
                cancelled=status in CANCELLED_STATUSES,
                customer=customer,
                email=email,
            )
        )
        order_lines(chunk, order_id, customer, email, row.line)

    return read_rows(grouped(rows, "order_id"), read)


CUSTOMERS = Layout(
    key="woocommerce_customers",
    platform="woocommerce",
    kind="customers",
    label="WooCommerce customer export",
    signature=frozenset({"customer_id", "first_name", "last_name", "email", "date_registered"}),
    required=("customer_id", "email"),
    reader=read_customers,
    columns={"customers": {"external_id": "customer_id", "first_seen_at": "date_registered"}},
)
ORDERS = Layout(
    key="woocommerce_orders",
    platform="woocommerce",
    kind="orders",
    label="WooCommerce order export",
    signature=frozenset({"order_id", "order_number", "status", "order_total", "order_currency"}),
    required=("order_id", "status", "order_total", "order_currency", "customer_id", "billing_email"),
    reader=read_orders,
    columns={
        "customers": {"external_id": "customer_id", "email": "billing_email", "name": "billing_first_name"},
        "orders": {
            "external_id": "order_id",
            "customer_external_id": "customer_id",
            "placed_at": "date",
            "amount": "order_total",
        },
    },
)
LAYOUTS = (CUSTOMERS, ORDERS)
