"""What every platform's data becomes before it is written: shop customers and orders in one shape.

Each platform module (shopify, woocommerce, shopware) turns its API pages, webhook payloads and CSV exports into a
`ShopBatch`; `shop_batch_ingest` maps that onto the ingest kinds and writes through `lifecycle.ingest`, the one
write path of customers and orders, so validation, upsert keys, the out-of-order guard (`source_updated_at`) and
the changed-customers outbox are the same as for the REST API and CSV import.

An item the shop sent that CLM cannot store (another currency, an order that is not a purchase yet, a guest order
without an email) is skipped and reported; it never blocks the rest of its batch, because a shop's history must
not stop at one odd order.
"""

import functools
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from lifecycle.ingest import ItemError, ValidItem, records_validate, records_write
from lifecycle.ingest_kinds import CUSTOMERS, ORDERS
from lifecycle.models import Customer, Order, OrderStatus
from lifecycle.privacy import customer_erase
from lifecycle.sources.models import Source

ID_MAX_LENGTH = 100
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Consent:
    state: str  # a lifecycle.models.ConsentState value
    at: datetime | None = None
    source: str = ""


@dataclass(frozen=True)
class ShopCustomer:
    id: str  # the platform's id, without the source's prefix
    email: str = ""
    name: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    email_consent: Consent | None = None
    sms_consent: Consent | None = None


@dataclass(frozen=True)
class Attribution:
    """Where an order came from, as the platform recorded it."""

    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    referrer: str = ""
    landing_site: str = ""


@dataclass(frozen=True)
class ShopOrder:
    id: str
    placed_at: datetime
    currency: str
    total: Decimal
    status: str  # the platform's own status, matched against the source's completed statuses
    customer: ShopCustomer | None  # None: a guest order, known by `email` only
    email: str = ""
    updated_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    cancelled: bool = False
    # None: the source does not say where the order came from (an export without the visit): no channel and no
    # campaign code are written, rather than `direct` made up, and what the API told CLM of the order stays.
    attribution: Attribution | None = None


@dataclass
class ShopBatch:
    customers: list[ShopCustomer] = field(default_factory=list)
    orders: list[ShopOrder] = field(default_factory=list)
    erased_customer_ids: list[str] = field(default_factory=list)  # platform ids, GDPR redaction / deletion
    # Platform ids of orders the shop deleted (WooCommerce's bin): written as cancelled, so they no longer count.
    deleted_order_ids: list[str] = field(default_factory=list)


@dataclass
class BatchOutcome:
    customers: int = 0
    orders: int = 0
    erased: int = 0
    skipped: list[str] = field(default_factory=list)
    touched_customer_ids: set[int] = field(default_factory=set)
    # Each customer and order written (by external id): created, updated or unchanged.
    customer_results: dict[str, str] = field(default_factory=dict)
    order_results: dict[str, str] = field(default_factory=dict)


def guest_customer_id(email: str) -> str:
    """A guest's customer id: a keyed hash of the email (one customer per guest; the id reveals nothing)."""
    return _guest_id(settings.SECRET_KEY, email.strip().lower())


@functools.lru_cache(maxsize=20_000)  # an export names a guest on each of their orders
def _guest_id(key: str, address: str) -> str:
    return f"guest-{hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]}"


def external_id(source: Source, platform_id: str) -> str:
    return f"{source.id_prefix}{platform_id}"


def order_status(source: Source, order: ShopOrder) -> str | None:
    """CLM's status of the order, or None when it is no purchase (yet): pending payment, a draft, on hold."""
    if order.cancelled:
        return OrderStatus.CANCELLED
    if order.total > 0 and order.refunded >= order.total:
        return OrderStatus.REFUNDED
    if order.status in source.completed_statuses:
        return OrderStatus.COMPLETED
    return None


RULE_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "referrer_host", "landing_site")
RULE_MATCHES = ("equals", "contains", "empty")


def _attribution_values(attribution: Attribution) -> dict[str, str]:
    return {
        "utm_source": attribution.utm_source,
        "utm_medium": attribution.utm_medium,
        "utm_campaign": attribution.utm_campaign,
        "referrer_host": (urlsplit(attribution.referrer).hostname or "") if attribution.referrer else "",
        "landing_site": attribution.landing_site,
    }


def order_channel(rules: Iterable[dict[str, str]], attribution: Attribution) -> str | None:
    """The channel key of the first rule the attribution matches (case-insensitive), or None.

    A rule is {"field": one of RULE_FIELDS, "match": equals | contains | empty, "value": text, "channel": key}.
    """
    values = _attribution_values(attribution)
    for rule in rules:
        value, wanted = values[rule["field"]].lower(), rule.get("value", "").lower()
        matched = {"equals": value == wanted, "contains": bool(wanted) and wanted in value, "empty": not value}
        if matched[rule["match"]]:
            return rule["channel"]
    return None


def _rule(field: str, match: str, value: str, channel: str) -> dict[str, str]:
    return {"field": field, "match": match, "value": value, "channel": channel}


# The usual UTM conventions and referrers, mapped to the core channels (lifecycle.defaults); admins edit them.
DEFAULT_CHANNEL_RULES = [
    *(_rule("utm_medium", "equals", medium, "email") for medium in ("email", "newsletter")),
    *(_rule("utm_medium", "equals", medium, "paid_ads") for medium in ("cpc", "ppc", "paid", "display", "paid_social")),
    *(_rule("utm_medium", "equals", medium, "organic_social") for medium in ("social", "organic_social")),
    *(_rule("utm_medium", "equals", medium, "referral") for medium in ("referral", "affiliate")),
    *(_rule("utm_medium", "equals", medium, "app_notifications") for medium in ("push", "app")),
    *(
        _rule("referrer_host", "contains", host, "organic_search")
        for host in ("google.", "bing.", "duckduckgo.", "ecosia.", "yahoo.")
    ),
    *(
        _rule("referrer_host", "contains", host, "organic_social")
        for host in ("facebook.", "instagram.", "twitter.", "linkedin.", "pinterest.", "tiktok.")
    ),
    _rule("referrer_host", "empty", "", "direct"),
    _rule("referrer_host", "contains", ".", "referral"),
]


def _customer_item(source: Source, customer: ShopCustomer) -> dict[str, Any]:
    item: dict[str, Any] = {"external_id": external_id(source, customer.id), "email": customer.email}
    if customer.name:
        item["name"] = customer.name
    if customer.created_at is not None:
        item["first_seen_at"] = customer.created_at
    if customer.updated_at is not None:
        item["source_updated_at"] = customer.updated_at
    for channel, consent in (("email", customer.email_consent), ("sms", customer.sms_consent)):
        if consent is not None:
            item[f"{channel}_consent"] = consent.state
            if consent.at is not None:  # a platform that does not date it leaves the stored date
                item[f"{channel}_consent_at"] = consent.at
            item[f"{channel}_consent_source"] = consent.source or source.platform
    return item


def _order_customer(order: ShopOrder) -> ShopCustomer | None:
    if order.customer is not None:
        return order.customer
    if order.email:
        # No first_seen_at: the guest's orders set it (ingestion lowers it to the earliest).
        return ShopCustomer(id=guest_customer_id(order.email), email=order.email)
    return None


def _order_item(source: Source, order: ShopOrder, customer: ShopCustomer) -> dict[str, Any] | str:
    """The order as an ingest item, or why it is skipped."""
    if order.currency.upper() != source.currency.upper():
        return f"order {order.id}: currency {order.currency} is not the shop's currency {source.currency} (currency)"
    status = order_status(source, order)
    if status is None:
        return f"order {order.id}: status {order.status!r} is not a completed purchase (status)"
    item: dict[str, Any] = {
        "external_id": external_id(source, order.id),
        "customer_external_id": external_id(source, customer.id),
        "create_customer": True,
        "placed_at": order.placed_at,
        "amount": max(order.total - order.refunded, Decimal(0)) if status != OrderStatus.REFUNDED else order.total,
        "status": status,
    }
    if order.attribution is not None:
        item["channel"] = order_channel(source.channel_rules, order.attribution)
        item["campaign_code"] = order.attribution.utm_campaign[:ID_MAX_LENGTH]
    if order.updated_at is not None:
        item["source_updated_at"] = order.updated_at
    return item


def _latest_customers(customers: Iterable[ShopCustomer]) -> list[ShopCustomer]:
    """One record per customer id: the most recently updated one."""
    latest: dict[str, ShopCustomer] = {}
    for customer in customers:
        known = latest.get(customer.id)
        if known is None or (customer.updated_at or NEVER) >= (known.updated_at or NEVER):
            latest[customer.id] = customer
    return list(latest.values())


def _skipped(kind_name: str, items: list[dict[str, Any]], errors: list[ItemError]) -> list[str]:
    return [
        f"{kind_name[:-1]} {items[error.index].get('external_id', '?')}: {error.message} ({error.field})"
        for error in errors
    ]


@dataclass
class BatchItems:
    """A batch as ingest items (not validated yet), and what was left out of it."""

    customers: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    skipped: list[str]


def shop_batch_items(*, source: Source, batch: ShopBatch) -> BatchItems:
    """The batch's customers and orders as the ingest kinds' items (a CSV preview validates them without writing)."""
    skipped: list[str] = []
    customers = list(batch.customers)
    orders: list[dict[str, Any]] = []
    for order in batch.orders:
        customer = _order_customer(order)
        if customer is None:
            skipped.append(f"order {order.id}: a guest order without an email (email)")
            continue
        customers.append(customer)
        item = _order_item(source, order, customer)
        if isinstance(item, str):
            skipped.append(item)
        else:
            orders.append(item)
    customer_items = [_customer_item(source, customer) for customer in _latest_customers(customers)]
    orders += _deleted_order_items(source, batch.deleted_order_ids)
    return BatchItems(customers=customer_items, orders=orders, skipped=skipped)


def _deleted_order_items(source: Source, platform_ids: list[str]) -> list[dict[str, Any]]:
    """The stored orders among these as cancelled; an order CLM never had needs nothing."""
    if not platform_ids:
        return []
    stored = Order.objects.filter(external_id__in=[external_id(source, order_id) for order_id in platform_ids])
    return [
        {
            "external_id": order_id,
            "customer_external_id": customer_id,
            "placed_at": placed_at,
            "amount": amount,
            "status": OrderStatus.CANCELLED,
        }
        for order_id, customer_id, placed_at, amount in stored.values_list(
            "external_id", "customer__external_id", "placed_at", "amount"
        )
    ]


def shop_items_write(*, customers: list[ValidItem], orders: list[ValidItem]) -> BatchOutcome:
    """Write validated customers, then their orders, in one transaction; set the acquisition channels."""
    outcome = BatchOutcome()
    with transaction.atomic():
        written = records_write(kind=CUSTOMERS, items=customers)
        outcome.customers = len(written.items)
        outcome.customer_results = {item.key["external_id"]: item.status for item in written.items}
        outcome.touched_customer_ids |= written.touched_customer_ids
        written = records_write(kind=ORDERS, items=orders)
        outcome.orders = len(written.items)
        outcome.order_results = {item.key["external_id"]: item.status for item in written.items}
        outcome.touched_customer_ids |= written.touched_customer_ids
        acquisition_channels_update(customer_ids=outcome.touched_customer_ids)
    return outcome


def shop_batch_ingest(*, source: Source, batch: ShopBatch) -> BatchOutcome:
    """Write a batch of the shop's customers and orders in one transaction; erase the customers it redacts."""
    items = shop_batch_items(source=source, batch=batch)
    skipped = items.skipped
    valid_customers, customer_errors = records_validate(kind=CUSTOMERS, items=items.customers)
    skipped += _skipped(CUSTOMERS.name, items.customers, customer_errors)
    refused = {items.customers[error.index]["external_id"] for error in customer_errors}
    orders = [item for item in items.orders if item["customer_external_id"] not in refused]
    valid_orders, order_errors = records_validate(kind=ORDERS, items=orders)
    skipped += _skipped(ORDERS.name, orders, order_errors)
    outcome = shop_items_write(customers=valid_customers, orders=valid_orders)
    outcome.skipped = skipped
    # Counted as the shop listed them: a customer that came with their orders is not counted again.
    listed = {external_id(source, customer.id) for customer in batch.customers}
    outcome.customers = sum(1 for key in outcome.customer_results if key in listed)
    for platform_id in batch.erased_customer_ids:
        customer = Customer.objects.filter(external_id=external_id(source, platform_id)).first()
        if customer is not None:
            customer_erase(customer=customer, actor=None, reason=f"{source.get_platform_display()} redaction request")
            outcome.erased += 1
    return outcome


def acquisition_channels_update(*, customer_ids: Iterable[int]) -> int:
    """A customer's acquisition channel is their first order's channel (kept when that order has none)."""
    first_order_channel = (
        Order.objects.filter(customer=OuterRef("pk")).order_by("placed_at", "id").values("channel_id")[:1]
    )
    return Customer.objects.filter(pk__in=list(customer_ids)).update(
        acquisition_channel_id=Coalesce(Subquery(first_order_channel), F("acquisition_channel_id"))
    )
