"""WooCommerce: the shop's history through the REST API v3, its webhooks, both mapped onto the shop records.

Followed: the REST API v3 documentation (https://woocommerce.github.io/woocommerce-rest-api-docs/: authentication
over HTTPS, pagination, list all customers, list all orders, webhooks) and, where it says too little, WooCommerce's
own source (github.com/woocommerce/woocommerce, plugins/woocommerce/): `includes/class-wc-webhook.php` (how a
delivery is signed, its headers, its delivery id, the ping), `includes/wc-webhook-functions.php` (no retries),
`src/Internal/Traits/OrderAttributionMeta.php` (the order attribution meta keys, WooCommerce 8.5+).
"""

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from lifecycle.ingest_kinds import EARLIEST_EVENT
from lifecycle.sources.http import ShopHttp
from lifecycle.sources.models import Platform, Source
from lifecycle.sources.platforms import (
    Page,
    PlatformAdapter,
    PlatformUnavailable,
    WebhookDelivery,
    WebhookRefused,
    platform_register,
)
from lifecycle.sources.records import NEVER, Attribution, ShopBatch, ShopCustomer, ShopOrder

API_PATH = "/wp-json/wc/v3/"
PER_PAGE = 100  # the most the WordPress REST API serves per page
CUSTOMERS, ORDERS = "customers", "orders"
# Only the fields CLM reads (WordPress's `_fields`): line items, addresses and links make most of a page's weight.
FIELDS = {
    CUSTOMERS: "id,email,first_name,last_name,billing,date_created_gmt,date_modified_gmt",
    ORDERS: "id,status,currency,total,customer_id,billing,refunds,meta_data,date_created_gmt,date_modified_gmt",
}
# Ascending ids keep the pages stable while the shop takes new orders: they are appended after the last page.
HISTORY_ORDER = {"orderby": "id", "order": "asc"}

# WooCommerce's statuses (docs: order properties). `processing` is paid and waiting to ship, so it is a purchase;
# `pending` and `on-hold` still wait for the money; `cancelled` and `failed` never became one (written as CLM's
# `cancelled`, so an order counted before is withdrawn; CLM counts only completed orders, so this changes no metric
# for one that never was); `refunded` is a full refund.
COMPLETED_STATUSES = ("processing", "completed")
CANCELLED_STATUSES = ("cancelled", "failed")
REFUNDED_STATUS = "refunded"
# WordPress's personal-data eraser replaces an order's email by this address (wp_privacy_anonymize_data): it is no
# one's, so it must not gather every anonymised guest order into one customer.
ANONYMISED_EMAIL = "deleted@site.invalid"
ATTRIBUTION_PREFIX = "_wc_order_attribution_"

WEBHOOK_TOPICS = (
    "order.created",
    "order.updated",
    "order.deleted",  # moved to the bin (or deleted for good): its payload is the id alone
    "order.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
)


# --- mapping: WooCommerce's JSON (API pages and webhook payloads are the same) onto the shop records ---


def _moment(value: Any) -> datetime | None:
    """A `*_gmt` date ("2017-03-22T19:28:02": UTC without an offset) as an aware datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _money(value: Any) -> Decimal:
    return Decimal(str(value or "0"))


def _name(fields: Mapping[str, Any]) -> str:
    return " ".join(str(fields.get(key) or "").strip() for key in ("first_name", "last_name")).strip()


def _email(value: Any) -> str:
    email = str(value or "").strip()
    return "" if email.lower() == ANONYMISED_EMAIL else email


def shop_customer(data: Mapping[str, Any]) -> ShopCustomer:
    """A customer of the customers endpoint (or a customer.* webhook). WooCommerce records no marketing consent."""
    billing = data.get("billing") or {}
    return ShopCustomer(
        id=str(data["id"]),
        email=_email(data.get("email") or billing.get("email")),
        name=_name(data) or _name(billing),
        created_at=_moment(data.get("date_created_gmt")),
        updated_at=_moment(data.get("date_modified_gmt")),
    )


def order_attribution(meta_data: Any) -> Attribution:
    """WooCommerce's order attribution (8.5+), kept in the order's meta data. Sourcebuster writes "(none)" for a
    value it does not know; a direct visit has the source "(direct)", kept so a channel rule can name it."""
    meta = {item.get("key"): item.get("value") for item in meta_data or [] if isinstance(item, dict)}

    def value(field: str) -> str:
        text = str(meta.get(ATTRIBUTION_PREFIX + field) or "").strip()
        return "" if text == "(none)" else text

    return Attribution(
        utm_source=value("utm_source"),
        utm_medium=value("utm_medium"),
        utm_campaign=value("utm_campaign"),
        referrer=value("referrer"),
        landing_site=value("session_entry"),
    )


def shop_order(data: Mapping[str, Any]) -> ShopOrder:
    """An order of the orders endpoint (or an order.* webhook). `total` stays the amount ordered; refunds are listed
    beside it with negative totals. `customer_id` 0 is a guest, known by the billing email."""
    placed_at = _moment(data.get("date_created_gmt"))
    if placed_at is None:
        raise ValueError(f"order {data.get('id')}: no date_created_gmt")
    billing = data.get("billing") or {}
    email = _email(billing.get("email"))
    status = str(data.get("status") or "")
    total = _money(data.get("total"))
    refunded = sum((abs(_money(refund.get("total"))) for refund in data.get("refunds") or []), Decimal(0))
    if status == REFUNDED_STATUS:  # marked refunded by hand, without refund records: still a full refund
        refunded = max(refunded, total)
    customer_id = int(data.get("customer_id") or 0)
    # The billing details are the customer's as of the order: the customer record itself, when newer, wins. An
    # order without a billing email only introduces its customer, it never blanks a known one's email.
    customer = (
        ShopCustomer(
            id=str(customer_id), email=email, name=_name(billing), updated_at=placed_at if email else EARLIEST_EVENT
        )
        if customer_id
        else None
    )
    return ShopOrder(
        id=str(data["id"]),
        placed_at=placed_at,
        currency=str(data.get("currency") or ""),
        total=total,
        status=status,
        customer=customer,
        email=email,
        updated_at=_moment(data.get("date_modified_gmt")),
        refunded=refunded,
        cancelled=status in CANCELLED_STATUSES,
        attribution=order_attribution(data.get("meta_data")),
    )


def _batch(resource: str, items: list[dict[str, Any]]) -> ShopBatch:
    if resource == CUSTOMERS:
        return ShopBatch(customers=[shop_customer(item) for item in items])
    return ShopBatch(orders=[shop_order(item) for item in items])


# --- webhooks (WC_Webhook::deliver) ---


def signature_valid(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """X-WC-Webhook-Signature is base64(HMAC-SHA256(secret, raw body)) (WC_Webhook::generate_signature)."""
    sent = headers.get("X-WC-Webhook-Signature", "")
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return bool(sent) and hmac.compare_digest(expected.encode(), sent.encode())


def webhook_ping(body: bytes, headers: Mapping[str, str]) -> bool:
    """Saving a webhook as active makes WooCommerce post `webhook_id=<id>`, form-encoded, unsigned and without the
    X-WC-Webhook-* headers (WC_Webhook::deliver_ping); anything but 200 and the admin sees an error."""
    return "X-WC-Webhook-Topic" not in headers and re.fullmatch(rb"webhook_id=\d+", body.strip()) is not None


def webhook_delivery(headers: Mapping[str, str], payload: Any) -> WebhookDelivery:
    """The delivery's topic, and an id that is the same whenever the same content comes again.

    X-WC-Webhook-Delivery-ID cannot be that id: it is wp_hash(webhook id . current second)
    (WC_Webhook::get_new_delivery_id), new at every delivery and shared by two deliveries of one webhook within
    one second, e.g. two orders of a bulk edit. So the id is the resource, its id and a digest of the payload: a
    replay is stored once, every changed state is stored (WooCommerce builds the payload when it delivers).
    """
    topic = headers.get("X-WC-Webhook-Topic", "")
    if topic not in WEBHOOK_TOPICS:
        raise WebhookRefused(f"Unknown topic {topic!r}: CLM takes {', '.join(WEBHOOK_TOPICS)}.")
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), int | str):
        raise WebhookRefused("The payload has no id.")
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return WebhookDelivery(delivery_id=f"{topic.split('.')[0]}:{payload['id']}:{digest}", topic=topic)


def webhook_batch(topic: str, payload: Any) -> ShopBatch:
    """A webhook's payload is the resource as the REST API shows it; customer.deleted and order.deleted carry the
    id alone."""
    try:
        if topic == "customer.deleted":
            return ShopBatch(erased_customer_ids=[str(payload["id"])])
        if topic == "order.deleted":
            return ShopBatch(deleted_order_ids=[str(payload["id"])])
        if topic in WEBHOOK_TOPICS:
            return _batch(CUSTOMERS if topic.startswith("customer.") else ORDERS, [payload])
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
        raise WebhookRefused(f"The {topic} payload is not shaped as WooCommerce's: {exc!r}") from None
    raise WebhookRefused(f"Unknown topic {topic!r}.")


# --- the REST API client ---


def _gmt(moment: datetime) -> str:
    """A moment as the API's date parameters take it with dates_are_gmt=true: UTC, no offset."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class WooClient:
    """The shop's REST API v3 with its REST API keys: HTTP Basic over HTTPS (docs: authentication over HTTPS).

    A history import pages through the customers, then the orders, by ascending id; its checkpoint holds the
    resource and page it reached, and the total both hold (X-WP-Total) for the progress bar.
    """

    def __init__(self, source: Source, *, sleep: Callable[[float], None] = time.sleep, per_page: int = PER_PAGE):
        credentials = source.credentials or {}
        self.http = ShopHttp(
            base_url=source.shop_url.rstrip("/") + API_PATH,
            headers={"Accept": "application/json"},
            auth=(str(credentials.get("consumer_key", "")), str(credentials.get("consumer_secret", ""))),
            sleep=sleep,
        )
        self.per_page = per_page

    def _list(self, resource: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], httpx.Response]:
        response = self.http.request("GET", resource, params={"_fields": FIELDS[resource], **params})
        try:
            items = response.json()
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise PlatformUnavailable(
                f"{response.url} did not answer with a JSON list: is the address a WooCommerce shop with pretty "
                "permalinks (WordPress › Settings › Permalinks)?"
            )
        return items, response

    def _page(self, resource: str, page: int, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """One page, and whether more follow (X-WP-TotalPages; without it, a full page may have a next one)."""
        items, response = self._list(resource, {"page": page, "per_page": self.per_page, **params})
        pages = response.headers.get("X-WP-TotalPages", "")
        return items, page < int(pages) if pages.isdigit() else len(items) >= self.per_page

    def _count(self, resource: str) -> int:
        _, response = self._list(resource, {"per_page": 1})
        total = response.headers.get("X-WP-Total", "")
        return int(total) if total.isdigit() else 0

    def connection_check(self) -> None:
        # Both resources: a key of a user who may read orders but not customers is refused here, not mid-import.
        for resource in (CUSTOMERS, ORDERS):
            self._list(resource, {"per_page": 1})

    def history_page(self, checkpoint: dict[str, Any]) -> Page:
        resource, page = checkpoint.get("resource", CUSTOMERS), int(checkpoint.get("page", 1))
        total = checkpoint.get("total")
        if total is None:
            total = self._count(CUSTOMERS) + self._count(ORDERS)
        items, more = self._page(resource, page, HISTORY_ORDER)
        following: dict[str, Any] | None = {"resource": resource, "page": page + 1, "total": total}
        if not more:
            following = {"resource": ORDERS, "page": 1, "total": total} if resource == CUSTOMERS else None
        return Page(batch=_batch(resource, items), checkpoint=following, total=total)

    def changes_page(self, since: datetime, checkpoint: dict[str, Any]) -> Page:
        resource, page = checkpoint.get("resource", CUSTOMERS), int(checkpoint.get("page", 1))
        if resource == CUSTOMERS:
            # The customers endpoint has no date filter: the newest registrations first, until one older than
            # `since`. A changed customer comes with their next order and through the customer.updated webhook.
            items, more = self._page(CUSTOMERS, page, {"orderby": "registered_date", "order": "desc"})
            new = [item for item in items if (_moment(item.get("date_created_gmt")) or NEVER) >= since]
            following = {"resource": CUSTOMERS, "page": page + 1} if more and len(new) == len(items) else None
            return Page(batch=_batch(CUSTOMERS, new), checkpoint=following or {"resource": ORDERS, "page": 1})
        # modified_after with dates_are_gmt: WooCommerce 5.8+ (woocommerce/woocommerce#30585).
        params = {**HISTORY_ORDER, "modified_after": _gmt(since), "dates_are_gmt": "true"}
        items, more = self._page(ORDERS, page, params)
        return Page(batch=_batch(ORDERS, items), checkpoint={"resource": ORDERS, "page": page + 1} if more else None)


platform_register(
    PlatformAdapter(
        key=Platform.WOOCOMMERCE,
        credential_sets=(("consumer_key", "consumer_secret"),),
        default_completed_statuses=COMPLETED_STATUSES,
        webhook_topics=WEBHOOK_TOPICS,
        signature_valid=signature_valid,
        webhook_delivery=webhook_delivery,
        webhook_batch=webhook_batch,
        client=WooClient,
        ping=webhook_ping,
    )
)
