"""One small Shopify shop, described once (customers, orders and what happened to them) and rendered in the three shapes
CLM reads a Shopify shop in: the Admin GraphQL API's nodes (served to the history import by fake_shopify.FakeShopify),
the webhook deliveries of the shop's life (REST-shaped payloads, signed as Shopify signs them) and the CSV exports an
admin downloads. Each renderer starts from the documented fixtures (fixtures/shopify, fixtures/csv: their READMEs
cite the pages) and names the page whose shape it follows.

The shop's time zone is Europe/Berlin: the REST payloads and the exports write times in it (with their offset, +01:00
before and +02:00 after 30 March 2025), the GraphQL API in UTC.
"""

import base64
import csv
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.lifecycle.sources import csv_exports
from tests.lifecycle.sources.fake_shopify import a_customer, an_order, fixture

SHOP_ZONE = ZoneInfo("Europe/Berlin")
SHOP_DOMAIN = "clm-test.myshopify.com"
CURRENCY = "EUR"
CREATED_TO_UPDATED = timedelta(seconds=5)  # an order's updated_at when nothing happened to it after it was placed


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Consent:
    state: str  # Shopify's REST spelling: subscribed, not_subscribed, unsubscribed
    level: str = "single_opt_in"
    at: datetime | None = None  # when the customer said so; None: never asked


@dataclass(frozen=True)
class ShopifyCustomer:
    id: int
    first: str
    last: str
    email: str
    created: datetime
    email_consent: Consent
    sms_consent: Consent | None = None  # None: no phone number, no SMS consent at all
    phone: str = ""
    # A later change of mind about email marketing (customers/update); `changed.at` is when.
    changed: Consent | None = None

    def _change(self, moment: datetime) -> Consent | None:
        """The change of mind, once it has happened by `moment`."""
        return self.changed if self.changed and self.changed.at and self.changed.at <= moment else None

    def updated_at(self, moment: datetime) -> datetime:
        change = self._change(moment)
        return change.at if change and change.at else self.created

    def email_consent_at(self, moment: datetime) -> Consent:
        return self._change(moment) or self.email_consent


@dataclass(frozen=True)
class Visit:
    """The visit an order came from: its landing page (path and query, as REST's landing_site) and referrer."""

    landing: str = "/"
    referrer: str = ""

    def utm(self) -> dict[str, str] | None:
        query = parse_qs(urlsplit(self.landing).query)
        found = {name: query[f"utm_{name}"][0] for name in ("source", "medium", "campaign") if f"utm_{name}" in query}
        return found or None


@dataclass(frozen=True)
class ShopifyOrder:
    id: int
    number: int  # its name in the admin and the export: #1001
    placed: datetime
    total: Decimal
    status: str  # the financial status when placed: paid, pending, authorized
    customer: ShopifyCustomer | None  # None: a guest checkout, known by `email`
    email: str = ""
    visit: Visit = Visit()
    refunds: tuple[tuple[datetime, Decimal], ...] = ()
    cancelled: datetime | None = None  # cancelled then, its authorization voided
    lines: tuple[tuple[str, int, Decimal], ...] = ()  # line items: name, quantity, price; default one of `total`

    @property
    def address(self) -> str:
        return self.customer.email if self.customer else self.email

    def changes(self) -> list[datetime]:
        return sorted([*(at for at, _ in self.refunds), *([self.cancelled] if self.cancelled else [])])

    def updated_at(self, moment: datetime) -> datetime:
        return max([self.placed + CREATED_TO_UPDATED, *(at for at in self.changes() if at <= moment)])

    def refunded(self, moment: datetime) -> Decimal:
        return sum((amount for at, amount in self.refunds if at <= moment), Decimal(0))

    def cancelled_at(self, moment: datetime) -> datetime | None:
        return self.cancelled if self.cancelled and self.cancelled <= moment else None

    def financial_status(self, moment: datetime) -> str:
        refunded = self.refunded(moment)
        if self.cancelled_at(moment) and self.status == "authorized":
            return "voided"
        if refunded >= self.total:
            return "refunded"
        return "partially_refunded" if refunded else self.status

    def items(self) -> tuple[tuple[str, int, Decimal], ...]:
        return self.lines or (("Gift card", 1, self.total),)


@dataclass(frozen=True)
class Shop:
    customers: list[ShopifyCustomer]
    orders: list[ShopifyOrder]
    end: datetime  # today, after everything happened: the shop as its API and its exports show it


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_shop(moment: datetime) -> str:
    return moment.astimezone(SHOP_ZONE).isoformat(timespec="seconds")


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


# --- the Admin GraphQL API (history import) ------------------------------------------------------------------------
# https://shopify.dev/docs/api/admin-graphql/2025-10/objects/Customer,
# https://shopify.dev/docs/api/admin-graphql/2025-10/objects/CustomerEmailMarketingConsentState (and Sms…),
# https://shopify.dev/docs/api/admin-graphql/2025-10/objects/Order,
# https://shopify.dev/docs/api/admin-graphql/2025-10/objects/CustomerVisit (as fixtures/shopify/README.md lists them)


def _node_consent(consent: Consent | None) -> dict[str, Any] | None:
    if consent is None:
        return None
    return {
        "marketingState": consent.state.upper(),
        "marketingOptInLevel": consent.level.upper(),
        "consentUpdatedAt": iso_utc(consent.at) if consent.at else None,
    }


def customer_node(customer: ShopifyCustomer, moment: datetime) -> dict[str, Any]:
    return a_customer(
        customer.id,
        customer.email,
        updated=iso_utc(customer.updated_at(moment)),
        firstName=customer.first,
        lastName=customer.last,
        createdAt=iso_utc(customer.created),
        emailMarketingConsent=_node_consent(customer.email_consent_at(moment)),
        smsMarketingConsent=_node_consent(customer.sms_consent),
    )


def order_node(order: ShopifyOrder, moment: datetime) -> dict[str, Any]:
    customer = customer_node(order.customer, moment) if order.customer else None
    cancelled = order.cancelled_at(moment)
    visit = {
        "landingPage": f"https://{SHOP_DOMAIN}{order.visit.landing}",
        "referrerUrl": order.visit.referrer or None,
        "utmParameters": order.visit.utm(),
    }
    return an_order(
        order.id,
        customer,
        email=order.address,
        createdAt=iso_utc(order.placed),
        processedAt=iso_utc(order.placed),
        updatedAt=iso_utc(order.updated_at(moment)),
        cancelledAt=iso_utc(cancelled) if cancelled else None,
        displayFinancialStatus=order.financial_status(moment).upper(),
        total=money(order.total),
        refunded=money(order.refunded(moment)),
        customerJourneySummary={"lastVisit": visit},
    )


def graphql_nodes(shop: Shop) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The customers' and orders' nodes as the shop has them today (FakeShopify.customers, .orders)."""
    return [customer_node(c, shop.end) for c in shop.customers], [order_node(o, shop.end) for o in shop.orders]


# --- webhooks: REST-shaped payloads --------------------------------------------------------------------------------
# https://shopify.dev/docs/api/webhooks?reference=toml#list-topics-customers/create (customers/update alike),
# #list-topics-orders/create (orders/updated, orders/cancelled alike), #list-topics-refunds/create;
# headers and signature: https://shopify.dev/docs/apps/build/webhooks/verify-deliveries,
# https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates


def _payload_consent(consent: Consent | None) -> dict[str, Any] | None:
    if consent is None:
        return None
    return {
        "state": consent.state,
        "opt_in_level": consent.level,
        "consent_updated_at": iso_shop(consent.at) if consent.at else None,
    }


def _person_fields(customer: ShopifyCustomer, moment: datetime) -> dict[str, Any]:
    """The fields a customer's REST shapes (the customers/* payload, an order's `customer`) share."""
    return {
        "id": customer.id,
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer.id}",
        "email": customer.email,
        "first_name": customer.first,
        "last_name": customer.last,
        "phone": customer.phone or None,
        "created_at": iso_shop(customer.created),
        "updated_at": iso_shop(customer.updated_at(moment)),
        "email_marketing_consent": _payload_consent(customer.email_consent_at(moment)),
        "sms_marketing_consent": _payload_consent(customer.sms_consent),
    }


def customer_payload(customer: ShopifyCustomer, moment: datetime) -> dict[str, Any]:
    return {**fixture("customers_update.json"), **_person_fields(customer, moment), "addresses": []}


def refund_payload(order: ShopifyOrder, at: datetime, amount: Decimal, number: int) -> dict[str, Any]:
    refund = fixture("refund.json")
    transaction = refund["transactions"][0]
    transaction.update(
        id=order.id * 10 + number, order_id=order.id, amount=money(amount), currency=CURRENCY, created_at=iso_shop(at)
    )
    transaction["processed_at"] = transaction["created_at"]
    refund.update(id=order.id * 10 + number, order_id=order.id, created_at=iso_shop(at), processed_at=iso_shop(at))
    return refund


def order_payload(order: ShopifyOrder, moment: datetime) -> dict[str, Any]:
    payload = fixture("orders_create.json")
    refunded, cancelled = order.refunded(moment), order.cancelled_at(moment)
    total, current = money(order.total), money(order.total - refunded)
    customer = None
    if order.customer is not None:
        customer = {**payload["customer"], **_person_fields(order.customer, moment), "default_address": None}
    template = payload["line_items"][0]
    shop_money = {"amount": total, "currency_code": CURRENCY}  # the buyer paid in the shop's currency
    payload.update(
        id=order.id,
        admin_graphql_api_id=f"gid://shopify/Order/{order.id}",
        name=f"#{order.number}",
        order_number=order.number,
        number=order.number - 1000,
        email=order.address,
        contact_email=order.address,
        created_at=iso_shop(order.placed),
        processed_at=iso_shop(order.placed),
        updated_at=iso_shop(order.updated_at(moment)),
        cancelled_at=iso_shop(cancelled) if cancelled else None,
        cancel_reason="customer" if cancelled else None,
        financial_status=order.financial_status(moment),
        test=False,
        total_price=total,
        subtotal_price=total,
        total_line_items_price=total,
        total_discounts="0.00",
        current_total_price=current,
        current_subtotal_price=current,
        total_price_set={"shop_money": shop_money, "presentment_money": shop_money},
        landing_site=order.visit.landing,
        referring_site=order.visit.referrer or None,
        customer=customer,
        line_items=[
            {**template, "id": order.id * 10 + index, "name": name, "title": name, "quantity": quantity,
             "price": money(price), "sku": f"SKU-{order.number}-{index}"}
            for index, (name, quantity, price) in enumerate(order.items(), start=1)
        ],
        refunds=[
            refund_payload(order, at, amount, number)
            for number, (at, amount) in enumerate(order.refunds, start=1)
            if at <= moment
        ],
    )  # fmt: skip
    return payload


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery of the shop's life: the topic, when it happened, and its payload."""

    topic: str
    at: datetime
    record: int
    payload: dict[str, Any] = field(compare=False)

    def __repr__(self) -> str:  # hypothesis prints the order it drew: short, so a failing order can be read
        return f"{self.topic}({self.record}@{self.at:%m-%d %H:%M})"

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def headers(self, secret: str) -> dict[str, str]:
        event = uuid.uuid5(uuid.NAMESPACE_URL, f"{SHOP_DOMAIN}/{self.topic}/{self.record}/{self.at.isoformat()}")
        signature = hmac.new(secret.encode(), self.body(), hashlib.sha256).digest()
        return {
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(signature).decode(),
            "X-Shopify-Event-Id": str(event),
            "X-Shopify-Webhook-Id": str(uuid.uuid5(event, "delivery")),
            "X-Shopify-Shop-Domain": SHOP_DOMAIN,
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Triggered-At": iso_utc(self.at),
        }


def webhook_deliveries(shop: Shop) -> list[Delivery]:
    """Every webhook the shop sends over its life, each payload as it was at that moment, in the order they happened:
    customers/create and /update; orders/create; for a refund refunds/create (which names the order only) and the
    orders/updated that follows it; orders/cancelled."""
    deliveries: list[Delivery] = []
    for customer in shop.customers:
        deliveries.append(
            Delivery("customers/create", customer.created, customer.id, customer_payload(customer, customer.created))
        )
        if customer.changed and customer.changed.at:
            at = customer.changed.at
            deliveries.append(Delivery("customers/update", at, customer.id, customer_payload(customer, at)))
    for order in shop.orders:
        deliveries.append(Delivery("orders/create", order.placed, order.id, order_payload(order, order.placed)))
        for number, (at, amount) in enumerate(order.refunds, start=1):
            deliveries.append(Delivery("refunds/create", at, order.id, refund_payload(order, at, amount, number)))
            deliveries.append(Delivery("orders/updated", at, order.id, order_payload(order, at)))
        if order.cancelled:
            deliveries.append(
                Delivery("orders/cancelled", order.cancelled, order.id, order_payload(order, order.cancelled))
            )
    return sorted(deliveries, key=lambda delivery: delivery.at)


# --- the CSV exports ------------------------------------------------------------------------------------------------
# https://help.shopify.com/en/manual/customers/import-export-customers (customers_export.csv),
# https://help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders (orders_export.csv): the headers are
# the fixtures' (fixtures/csv/README.md), UTF-8 with a BOM, one row per line item, times like 2025-10-07 09:50:26 +0200


def _export_time(moment: datetime | None) -> str:
    return moment.astimezone(SHOP_ZONE).strftime("%Y-%m-%d %H:%M:%S %z") if moment else ""


def _yes_no(consent: Consent | None) -> str:
    return "" if consent is None else "yes" if consent.state == "subscribed" else "no"


def _customer_row(customer: ShopifyCustomer, shop: Shop) -> dict[str, str]:
    orders = [order for order in shop.orders if order.customer == customer]
    spent = sum(
        (o.total - o.refunded(shop.end) for o in orders if o.financial_status(shop.end) != "pending"), Decimal(0)
    )
    return {
        "Customer ID": f"'{customer.id}",
        "First Name": customer.first,
        "Last Name": customer.last,
        "Email": customer.email,
        "Accepts Email Marketing": _yes_no(customer.email_consent_at(shop.end)),
        "Phone": f"'{customer.phone}" if customer.phone else "",
        "Accepts SMS Marketing": _yes_no(customer.sms_consent),
        "Total Spent": money(spent),
        "Total Orders": str(len(orders)),
        "Tax Exempt": "no",
    }


def _order_rows(order: ShopifyOrder, end: datetime) -> list[dict[str, str]]:
    status = order.financial_status(end)
    first = {
        "Financial Status": status,
        "Paid at": _export_time(order.placed) if status not in ("pending", "authorized", "voided") else "",
        "Fulfillment Status": "unfulfilled" if order.cancelled or status == "pending" else "fulfilled",
        "Accepts Marketing": "no",
        "Currency": CURRENCY,
        "Subtotal": money(order.total),
        "Shipping": "0.00",
        "Taxes": "0.00",
        "Total": money(order.total),
        "Shipping Method": "Standard",
        "Billing Name": f"{order.customer.first} {order.customer.last}" if order.customer else "",
        "Cancelled at": _export_time(order.cancelled_at(end)),
        "Payment Method": "Shopify Payments",
        "Refunded Amount": money(order.refunded(end)),
        "Outstanding Balance": "0.00",
        "Id": str(order.id),
        "Risk Level": "Low",
        "Source": "web",
    }
    rows = []
    for index, (name, quantity, price) in enumerate(order.items()):
        row = {"Name": f"#{order.number}", "Email": order.address, "Created at": _export_time(order.placed)}
        row |= {"Lineitem quantity": str(quantity), "Lineitem name": name, "Lineitem price": money(price)}
        rows.append({**first, **row} if index == 0 else row)
    return rows


def _export_write(path: Path, header_of: str, rows: list[dict[str, str]]) -> Path:
    header = next(csv.reader(csv_exports.fixture(header_of).open(encoding="utf-8-sig")))
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([row.get(column, "") for column in header] for row in rows)
    return path


def csv_exports_write(shop: Shop, folder: Path) -> tuple[Path, Path]:
    """customers_export.csv and orders_export.csv of the shop as it is today, written into `folder`."""
    customers = [_customer_row(customer, shop) for customer in shop.customers]
    orders = [row for order in shop.orders for row in _order_rows(order, shop.end)]
    return (
        _export_write(folder / "customers_export.csv", "shopify_customers_export.csv", customers),
        _export_write(folder / "orders_export.csv", "shopify_orders_export.csv", orders),
    )
