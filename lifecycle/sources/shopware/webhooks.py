"""Shopware 6 app webhooks: the signature, the delivery id, and what each event writes.

- Body (https://developer.shopware.com/docs/guides/plugins/apps/webhook.html):
  `{"data": {"payload": …, "event": "<event name>"}, "source": {"url", "appVersion", "shopId", "eventId"},
  "timestamp": …}`; `source.eventId` stays the same when Shopware retries the webhook (since 6.4.11), so it is the
  delivery id. It is only in the body, which is read after the signature checked out.
- Signature: `shopware-shop-signature` is the hex HMAC-SHA256 of the raw body, keyed with the shop secret the app's
  registration handed out. CLM's registration (registration.py) hands out the source's webhook secret.
- Events (https://developer.shopware.com/docs/resources/references/app-reference/webhook-events-reference.html):
  business events carry their entity as the Admin API encodes it (`{"order": {…}}`, `{"customer": {…}}`) with the
  associations the event loaded: an order comes with its currency, state, customer and transactions, but without
  its refunds, so `refunded_partially` reads the order from the shop. Entity-written events (`customer.written`,
  `order.written`) carry ids and changed field names only; CLM takes none of them but `customer.deleted`, whose id
  is all an erasure needs. Customer edits and newsletter consent changes come with the sync (docs/SOURCES.md).
"""

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from lifecycle.sources.models import Source
from lifecycle.sources.platforms import CredentialsRejected, WebhookDelivery, WebhookRefused
from lifecycle.sources.records import ShopBatch
from lifecycle.sources.shopware.client import shopware_client
from lifecycle.sources.shopware.mapping import customer_record, is_guest, order_record

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "shopware-shop-signature"
REFUNDED_PARTIALLY = "state_enter.order_transaction.state.refunded_partially"
ORDER_TOPICS = (
    "checkout.order.placed",
    "state_enter.order.state.completed",
    "state_enter.order.state.cancelled",
    "state_enter.order_transaction.state.paid",
    "state_enter.order_transaction.state.paid_partially",
    REFUNDED_PARTIALLY,
    "state_enter.order_transaction.state.refunded",
    "state_enter.order_transaction.state.chargeback",
    "state_enter.order_transaction.state.cancelled",
)
CUSTOMER_REGISTERED = "checkout.customer.register"
CUSTOMER_DELETED = "customer.deleted"
TOPICS = (*ORDER_TOPICS, CUSTOMER_REGISTERED, CUSTOMER_DELETED)


def body_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    # Django's request.headers ignores the case of names; a plain mapping may not.
    sent = str({name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER, "")).strip().lower()
    if not sent or not secret:
        return False
    return hmac.compare_digest(body_signature(body, secret).encode(), sent.encode())


def webhook_delivery(headers: Mapping[str, str], payload: Any) -> WebhookDelivery:
    try:
        event_id, topic = payload["source"]["eventId"], payload["data"]["event"]
    except (KeyError, TypeError) as exc:
        raise WebhookRefused(f"Not a Shopware app webhook: it needs source.eventId and data.event ({exc!r}).") from exc
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRefused("source.eventId is empty: a delivery without it cannot be told from its retries.")
    if topic not in TOPICS:
        raise WebhookRefused(f"Unknown event {topic!r}: CLM takes {', '.join(TOPICS)}.")
    return WebhookDelivery(delivery_id=event_id, topic=topic)


def _event_batch(topic: str, event: Any) -> ShopBatch:
    if topic in ORDER_TOPICS:
        return ShopBatch(orders=[order_record(event["order"])])
    if topic == CUSTOMER_REGISTERED:
        customer = event["customer"]
        # A guest's account is made per order and known to CLM by email, with the order.
        return ShopBatch() if is_guest(customer) else ShopBatch(customers=[customer_record(customer, None)])
    if topic == CUSTOMER_DELETED:
        # Shopware deletes unused guest accounts on schedule too: those ids name no CLM customer and erase nothing.
        deleted = [row["primaryKey"] for row in event if row["entity"] == "customer"]
        return ShopBatch(erased_customer_ids=[str(key) for key in deleted if isinstance(key, str)])
    raise WebhookRefused(f"Unknown event {topic!r}.")


def webhook_batch(topic: str, payload: Any) -> ShopBatch:
    try:
        return _event_batch(topic, payload["data"]["payload"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise WebhookRefused(f"A {topic} payload of the wrong shape: {exc!r}") from exc


def webhook_source_batch(source: Source, topic: str, payload: Any) -> ShopBatch:
    """Like webhook_batch; a partial refund reads its order from the shop, where the refunded amount is."""
    if topic != REFUNDED_PARTIALLY:
        return webhook_batch(topic, payload)
    try:
        order_id = str(payload["data"]["payload"]["order"]["id"])
    except (KeyError, TypeError) as exc:
        raise WebhookRefused(f"A {topic} payload without order.id: {exc!r}") from exc
    try:
        return shopware_client(source).orders_batch([order_id])
    except CredentialsRejected as exc:
        # Retrying cannot help until an admin fixes the credentials; the sync brings the order in after that.
        logger.warning("source %s: %s for order %s not read: %s", source.pk, topic, order_id, exc)
        raise WebhookRefused(f"{topic} for order {order_id}: {exc}") from exc
