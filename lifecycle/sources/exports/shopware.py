"""Shopware 6's CSV exports (Settings → Import/Export → Export) with the shipped profiles "Default customer" and
"Default orders" (src/Core/Migration/V6_4/Migration1626696809AddImportExportCustomerProfile.php and
Migration1627983652AddOrderExportProfile.php): `;`-separated, booleans as 1/0, times in UTC as 2024-05-02
13:45:10.123 (Defaults::STORAGE_DATE_TIME_FORMAT), the columns named by each mapping's key:

- Default customer: id, salutation, customer_number, first_name, last_name, email, active, guest, customer_group, …
- Default orders: id, order_number, sales_channel_id, customer_firstname, customer_lastname, customer_email,
  billing_address_*, shipping_address_*, amount_total, order_state_id, line_items, order_date_time.

The default orders profile names no currency, no customer and the order's state only by its id. A copy of the
profile with these mappings added (docs/SOURCES.md) is read as the Admin API import reads an order
(`lifecycle.sources.shopware.mapping`): `stateMachineState.technicalName` as order_state,
`transactions.stateMachineState.technicalName` as payment_state, `currency.isoCode` as currency. Without them the
status is the state's id (list the id of your completed state among the source's completed statuses) and the
currency is taken to be the shop's. An order belongs to the registered customer of its customer_email (found in a
customers export read before or the history import); otherwise it is a guest order keyed by the email, as Shopware
makes a new account for each guest checkout and the API import keys guests by email too.
"""

from collections.abc import Iterator
from decimal import Decimal

from lifecycle.sources.exports.common import (
    ExportChunk,
    Layout,
    ReadContext,
    currency_check,
    order_customer,
    order_lines,
    positive,
    read_orders_by_email,
    read_rows,
)
from lifecycle.sources.exports.reading import CellError, Row, decimal_value, time_value, yes_no
from lifecycle.sources.records import ShopCustomer, ShopOrder, guest_customer_id
from lifecycle.sources.shopware.mapping import FULL_REFUND_STATES, ORDER_COMPLETED, PAYMENT_UNDECIDED

DOCS = "https://docs.shopware.com/en/shopware-6-en/settings/importexport"
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")  # stored in UTC
HEX_ID_LENGTH = 32


def _hex_id(row: Row, column: str) -> str:
    value = row.required(column).lower()
    if len(value) != HEX_ID_LENGTH or any(char not in "0123456789abcdef" for char in value):
        raise CellError(column, f"{value!r} is not a Shopware id (32 hexadecimal digits)")
    return value


def _name(row: Row, first: str, last: str) -> str:
    return " ".join(part for part in (row.get(first), row.get(last)) if part)


def read_customers(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        account_id = _hex_id(row, "id")
        email, name = row.get("email"), _name(row, "first_name", "last_name")
        if yes_no(row, "guest"):
            if not email:
                raise CellError("email", "a guest without an email cannot be told from other guests")
            customer = ShopCustomer(id=guest_customer_id(email), email=email, name=name)
        else:
            customer = ShopCustomer(id=account_id, email=email, name=name)
            if email:
                context.customer_ids[email.lower()] = account_id
        chunk.customer_add(customer, row.line)

    return read_rows(((row, 1) for row in rows), read)


def _status(row: Row) -> str:
    """As the API mapping: the payment state, except `completed` for an order completed with its payment undecided;
    with neither column (the default profile) the state's id."""
    state, payment = row.get("order_state"), row.get("payment_state")
    if not row.has("order_state") and not row.has("payment_state"):
        return row.get("order_state_id")
    if not row.has("payment_state"):
        return state
    return ORDER_COMPLETED if state == ORDER_COMPLETED and payment in PAYMENT_UNDECIDED else payment


def read_orders(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        order_id = _hex_id(row, "id")
        currency = row.get("currency") or context.source.currency
        currency_check(context.source, currency, "currency")
        total = positive(decimal_value(row, "amount_total"), "amount_total")
        email = row.get("customer_email")
        customer = order_customer(context, email, _name(row, "customer_firstname", "customer_lastname"))
        chunk.batch.orders.append(
            ShopOrder(
                id=order_id,
                placed_at=time_value(row, "order_date_time", formats=TIME_FORMATS),
                currency=currency,
                total=total,
                refunded=total if row.get("payment_state") in FULL_REFUND_STATES else Decimal(0),
                status=_status(row),
                cancelled=row.get("order_state") == "cancelled",
                customer=customer,
                email=email,
            )
        )
        order_lines(chunk, order_id, customer, email, row.line)

    return read_orders_by_email(rows, context, read, order_column="id", email_column="customer_email")


CUSTOMERS = Layout(
    key="shopware_customers",
    platform="shopware",
    kind="customers",
    label="Shopware customer export",
    signature=frozenset({"id", "customer_number", "first_name", "last_name", "email", "guest"}),
    required=("id", "email", "guest"),
    reader=read_customers,
    columns={"customers": {"external_id": "id"}},
)
ORDERS = Layout(
    key="shopware_orders",
    platform="shopware",
    kind="orders",
    label="Shopware order export",
    signature=frozenset({"id", "order_number", "customer_email", "amount_total", "order_date_time"}),
    required=("id", "customer_email", "amount_total", "order_date_time", "order_state_id|order_state|payment_state"),
    reader=read_orders,
    columns={
        "customers": {"external_id": "customer_email", "email": "customer_email", "name": "customer_firstname"},
        "orders": {
            "external_id": "id",
            "customer_external_id": "customer_email",
            "placed_at": "order_date_time",
            "amount": "amount_total",
            "status": "order_state",
        },
    },
)
LAYOUTS = (CUSTOMERS, ORDERS)
