"""Shopify's CSV exports as an admin downloads them (Customers → Export, Orders → Export; "CSV for Excel, Numbers,
or other spreadsheet programs"): `customers_export.csv` and `orders_export.csv`.

- Customers: one row per customer, `Customer ID` written with a leading apostrophe ('7210448301122) so that
  spreadsheets keep the digits; `Accepts Email Marketing` and `Accepts SMS Marketing` are yes/no.
- Orders: one row per line item; the order's own fields (Financial Status, Total, Currency, Created at, Cancelled at,
  Refunded Amount, Id …) only on its first row: rows are grouped by `Name` (#1001). Money in the shop's currency as
  decimals (53.91), times like 2025-10-07 09:50:26 +0200. The export names no customer id: an order belongs to the
  customer of its `Email` — the one a customers export read before (in the same run, or imported before) or the
  history import knows; otherwise it is a guest order, keyed by the email as the API import keys Shopify's guests.

Ids, statuses and attribution are read as `lifecycle.sources.shopify.mapping` reads the Admin API's, so a shop
brought in by CSV and by its API history gives the same customers and orders: numeric ids, the financial status
upper-cased (paid -> PAID, Order.displayFinancialStatus), the UTM parameters of the landing site's query string.
"""

from collections.abc import Iterator
from decimal import Decimal

from lifecycle.models import ConsentState
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
from lifecycle.sources.records import Attribution, Consent, ShopCustomer, ShopOrder
from lifecycle.sources.shopify.mapping import attribution

DOCS_CUSTOMERS = "https://help.shopify.com/en/manual/customers/import-export-customers"
DOCS_ORDERS = "https://help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders"
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z",)
CONSENT_SOURCE = "shopify csv"
# Not in Shopify's own export; some export apps add them, and they are read when present.
LANDING_COLUMNS = ("Landing Site", "Landing Page")
REFERRER_COLUMNS = ("Referring Site", "Referrer")


def _numeric_id(row: Row, column: str) -> str:
    value = row.required(column).lstrip("'")
    if not value.isdigit():
        raise CellError(column, f"{value!r} is not a Shopify id (digits)")
    return value


def _consent(row: Row, column: str) -> Consent | None:
    accepts = yes_no(row, column)
    if accepts is None:
        return None  # an old export without the column: leave what CLM knows alone
    # "no" says not subscribed now; the export cannot tell an unsubscribe from never having subscribed.
    return Consent(state=ConsentState.SUBSCRIBED if accepts else ConsentState.NOT_SUBSCRIBED, source=CONSENT_SOURCE)


def _name(row: Row, first: str, last: str) -> str:
    return " ".join(part for part in (row.get(first), row.get(last)) if part)


def read_customers(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        customer = ShopCustomer(
            id=_numeric_id(row, "Customer ID"),
            email=row.get("Email"),
            name=_name(row, "First Name", "Last Name"),
            email_consent=_consent(row, "Accepts Email Marketing"),
            sms_consent=_consent(row, "Accepts SMS Marketing"),
        )
        if customer.email:
            context.customer_ids[customer.email.lower()] = customer.id
        chunk.customer_add(customer, row.line)

    return read_rows(((row, 1) for row in rows), read)


def _first_present(row: Row, columns: tuple[str, ...]) -> str:
    return next((row.get(column) for column in columns if row.get(column)), "")


def _attribution(row: Row) -> Attribution | None:
    """None when the row says nothing of the visit (Shopify's own export never does): no channel is made up."""
    landing, referrer = _first_present(row, LANDING_COLUMNS), _first_present(row, REFERRER_COLUMNS)
    return attribution(landing, referrer) if landing or referrer else None


def read_orders(rows: Iterator[Row], context: ReadContext) -> Iterator[ExportChunk]:
    def read(row: Row, chunk: ExportChunk) -> None:
        order_id = _numeric_id(row, "Id")
        currency = row.required("Currency")
        currency_check(context.source, currency, "Currency")
        email = row.get("Email")
        customer = order_customer(context, email)
        chunk.batch.orders.append(
            ShopOrder(
                id=order_id,
                placed_at=time_value(row, "Created at", formats=TIME_FORMATS),
                currency=currency,
                total=positive(decimal_value(row, "Total"), "Total"),
                refunded=positive(decimal_value(row, "Refunded Amount", default=Decimal(0)), "Refunded Amount"),
                status=row.get("Financial Status").upper(),
                cancelled=bool(row.get("Cancelled at")),
                customer=customer,
                email=email,
                attribution=_attribution(row),
            )
        )
        order_lines(chunk, order_id, customer, email, row.line)

    return read_orders_by_email(rows, context, read, order_column="Name", email_column="Email")


CUSTOMERS = Layout(
    key="shopify_customers",
    platform="shopify",
    kind="customers",
    label="Shopify customer export",
    signature=frozenset({"First Name", "Last Name", "Email", "Total Spent", "Total Orders"}),
    required=("Customer ID", "Email"),
    reader=read_customers,
    columns={
        "customers": {
            "external_id": "Customer ID",
            "email": "Email",
            "name": "First Name",
            "email_consent": "Accepts Email Marketing",
            "sms_consent": "Accepts SMS Marketing",
        }
    },
)
ORDERS = Layout(
    key="shopify_orders",
    platform="shopify",
    kind="orders",
    label="Shopify order export",
    signature=frozenset({"Name", "Email", "Financial Status", "Lineitem name", "Total"}),
    required=("Name", "Id", "Email", "Financial Status", "Currency", "Total", "Created at"),
    reader=read_orders,
    columns={
        "customers": {"external_id": "Email", "email": "Email"},
        "orders": {
            "external_id": "Id",
            "customer_external_id": "Email",
            "placed_at": "Created at",
            "amount": "Total",
            "status": "Financial Status",
            "channel": "Landing Site",
            "campaign_code": "Landing Site",
        },
    },
)
LAYOUTS = (CUSTOMERS, ORDERS)
