"""Shopify webhooks: the signature, the delivery id, and what each topic writes.

- Signature (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries): `X-Shopify-Hmac-Sha256` is the
  base64 HMAC-SHA256 of the raw body, keyed with the app's client secret (API secret key); webhooks an admin makes
  under Settings → Notifications → Webhooks are signed with the key shown on that page.
- Delivery id (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates): `X-Shopify-Event-Id` is the same
  on every retry of a webhook; `X-Shopify-Webhook-Id` stands in where a delivery lacks it.
- Payloads are the REST resources (https://shopify.dev/docs/api/webhooks, e.g. orders/create), read by mapping.py.
- refunds/create carries the refund, not its order: CLM cannot tell from it what the order is now worth, so it
  reads the order from the shop (the same query as the syncs) and writes that. Shopify also sends orders/updated
  for the refund, with the refunds in it; either way the order ends up as the shop has it.
- customers/redact, shop/redact and customers/data_request are the mandatory privacy webhooks
  (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance): a redacted customer is erased
  (lifecycle.privacy); the other two change nothing in CLM and are logged.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from lifecycle.sources.models import Source
from lifecycle.sources.platforms import CredentialsRejected, WebhookDelivery, WebhookRefused
from lifecycle.sources.records import ShopBatch, guest_customer_id
from lifecycle.sources.shopify.client import shopify_client
from lifecycle.sources.shopify.mapping import numeric_id, rest_customer, rest_order

logger = logging.getLogger(__name__)

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/cancelled", "orders/paid")
CUSTOMER_TOPICS = ("customers/create", "customers/update")
LOGGED_TOPICS = ("shop/redact", "customers/data_request")
TOPICS = (*ORDER_TOPICS, "refunds/create", *CUSTOMER_TOPICS, "customers/delete", "customers/redact", *LOGGED_TOPICS)


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case (Django's request.headers ignores case; a plain dict does not)."""
    wanted = name.lower()
    return next((str(value).strip() for key, value in headers.items() if key.lower() == wanted), "")


def signature_valid(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    sent = _header(headers, "X-Shopify-Hmac-Sha256")
    if not sent or not secret:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), sent.encode())


def webhook_delivery(headers: Mapping[str, str], payload: Any) -> WebhookDelivery:
    topic = _header(headers, "X-Shopify-Topic")
    if topic not in TOPICS:
        raise WebhookRefused(f"Unknown topic {topic!r}: CLM takes {', '.join(TOPICS)}.")
    event = _header(headers, "X-Shopify-Event-Id") or _header(headers, "X-Shopify-Webhook-Id")
    if not event:
        raise WebhookRefused("No X-Shopify-Event-Id header: a delivery without it cannot be told from its retries.")
    if not isinstance(payload, dict):
        raise WebhookRefused(f"A {topic} payload must be a JSON object.")
    # One event may come under several topics (a payment is orders/paid and orders/updated): the topic keeps both.
    return WebhookDelivery(delivery_id=f"{topic}:{event}", topic=topic)


def _topic_batch(topic: str, payload: dict[str, Any]) -> ShopBatch:
    if topic in ORDER_TOPICS:
        return ShopBatch(orders=[rest_order(payload)])
    if topic in CUSTOMER_TOPICS:
        return ShopBatch(customers=[rest_customer(payload)])
    if topic == "customers/delete":
        return ShopBatch(erased_customer_ids=[numeric_id(payload["id"])])
    if topic == "customers/redact":
        customer = payload["customer"]
        erased = [numeric_id(customer["id"])]
        if customer.get("email"):
            erased.append(guest_customer_id(customer["email"]))  # their orders as a guest, if any
        return ShopBatch(erased_customer_ids=erased)
    if topic in LOGGED_TOPICS:
        # shop/redact: the merchant's own CLM keeps the merchant's data. data_request: the admin exports the
        # customer's data from CLM (docs/PRIVACY.md) and hands it to the merchant.
        customer_id = (payload.get("customer") or {}).get("id")
        logger.warning(
            "Shopify %s from %s (customer %s): nothing written", topic, payload.get("shop_domain"), customer_id
        )
        return ShopBatch()
    raise WebhookRefused(f"{topic} is read through the shop's API (webhook_source_batch).")


def webhook_batch(topic: str, payload: Any) -> ShopBatch:
    try:
        return _topic_batch(topic, payload)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise WebhookRefused(f"A {topic} payload of the wrong shape: {exc!r}") from exc


def webhook_source_batch(source: Source, topic: str, payload: Any) -> ShopBatch:
    """Like webhook_batch; refunds/create reads its order from the shop (see above)."""
    if topic != "refunds/create":
        return webhook_batch(topic, payload)
    try:
        order_id = numeric_id(payload["order_id"])
    except (KeyError, TypeError) as exc:
        raise WebhookRefused(f"A refunds/create payload without order_id: {exc!r}") from exc
    shop = shopify_client(source)
    try:
        return shop.order_batch(order_id)
    except CredentialsRejected as exc:
        # Retrying cannot help until an admin fixes the credentials; the sync brings the order in after that.
        raise WebhookRefused(f"refunds/create for order {order_id}: {exc}") from exc
    finally:
        shop.close()
