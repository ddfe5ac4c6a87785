"""Shopify webhooks through CLM's endpoint: signature before anything else, one delivery per event, and what each
topic writes (orders, refunds, cancellations, consent, attribution, erasure). Payloads: fixtures/shopify."""

import base64
import copy
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import DeliveryState, Source, SourceDelivery
from lifecycle.sources.shopify import client as shopify_api
from lifecycle.sources.shopify.webhooks import signature_valid
from lifecycle.sources.sync import delivery_process
from tests.lifecycle.sources.fake_shopify import FakeShopify, a_customer, an_order, fixture, shopify_source

pytestmark = pytest.mark.django_db

SECRET = "hush"
ORDER_ID = "820982911946154508"
CUSTOMER_ID = "115310627314723954"


def signed(body: bytes, secret: str = SECRET) -> str:
    """Shopify's signature: base64(HMAC-SHA256(app's client secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_the_signature_is_the_base64_hmac_sha256_of_the_raw_body():
    # Shopify publishes no fixed example; this digest was computed apart from CLM:
    #   printf '%s' '{"id":820982911946154508,"email":"jon@example.com"}' \
    #     | openssl dgst -sha256 -hmac 'hush' -binary | base64
    body = b'{"id":820982911946154508,"email":"jon@example.com"}'
    digest = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="

    assert signature_valid(body, {"X-Shopify-Hmac-Sha256": digest}, SECRET)
    assert signature_valid(body, {"x-shopify-hmac-sha256": digest}, SECRET)  # header names ignore case
    assert not signature_valid(body + b" ", {"X-Shopify-Hmac-Sha256": digest}, SECRET)
    assert not signature_valid(body, {"X-Shopify-Hmac-Sha256": digest}, "another secret")
    assert not signature_valid(body, {}, SECRET)


@pytest.fixture
def source(httpserver) -> Source:
    return shopify_source(httpserver, token="shpat_0123456789abcdef", secret=SECRET)


def send(client_, source, topic: str, payload, *, event: str = "", signature: str | None = None, raw: bytes = b""):
    """POST a webhook as Shopify does: the raw JSON body and its headers."""
    body = raw or json.dumps(payload).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event or f"event-{topic}-{len(body)}",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Shop-Domain": "clm-test.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Triggered-At": "2025-03-01T09:00:05.123456789Z",
    }
    headers["X-Shopify-Hmac-Sha256"] = signed(body) if signature is None else signature
    url = reverse("source-webhook", args=[source.webhook_token])
    return client_.post(url, data=body, content_type="application/json", headers=headers)


def deliver(client_, source, topic: str, payload, **kwargs) -> str:
    """Send the webhook, then run what the worker runs; returns the delivery's state."""
    response = send(client_, source, topic, payload, **kwargs)
    assert response.status_code == 200, response.content
    delivery = SourceDelivery.objects.get(delivery_id=response.json()["delivery_id"], source=source)
    return delivery_process(delivery_id=delivery.pk)


def order_payload(**fields) -> dict:
    return {**fixture("orders_create.json"), **fields}


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSBzaWduYXR1cmU=", "forged"])
def test_a_webhook_without_a_valid_signature_is_refused_and_nothing_stored(client, source, signature):
    response = send(client, source, "orders/create", order_payload(), signature=signature)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert not SourceDelivery.objects.exists() and not Order.objects.exists()


def test_a_signed_body_that_is_not_json_is_refused(client, source):
    response = send(client, source, "orders/create", None, raw=b"id=1&total=5")

    assert response.status_code == 400
    assert not SourceDelivery.objects.exists()


def test_an_unknown_topic_is_refused(client, source):
    response = send(client, source, "products/create", {"id": 632910392})

    assert response.status_code == 400
    assert "products/create" in response.json()["detail"]
    assert not SourceDelivery.objects.exists()


def test_a_replayed_event_is_answered_and_written_once(client, source):
    first = send(client, source, "orders/create", order_payload(), event="e-1")
    again = send(client, source, "orders/create", order_payload(), event="e-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["detail"] == "Already received."
    delivery = SourceDelivery.objects.get()
    assert delivery.delivery_id == "orders/create:e-1"
    delivery_process(delivery_id=delivery.pk)
    assert Order.objects.count() == 1


def test_an_order_of_a_customer_not_known_yet_brings_the_customer_its_consent_and_attribution(client, source):
    assert deliver(client, source, "orders/create", order_payload()) == DeliveryState.PROCESSED

    order = Order.objects.get(external_id=ORDER_ID)
    assert (order.amount, order.status, order.channel.key, order.campaign_code) == (
        Decimal("403.00"),
        OrderStatus.COMPLETED,
        "email",  # landing_site ?utm_medium=email
        "spring-sale",
    )
    customer = order.customer
    assert (customer.external_id, customer.email, customer.name) == (CUSTOMER_ID, "jon@example.com", "Jon Doe")
    assert (customer.email_consent, customer.email_consent_source) == (ConsentState.SUBSCRIBED, "shopify single_opt_in")
    assert customer.email_consent_at.isoformat() == "2025-02-20T08:00:00+00:00"
    assert customer.acquisition_channel.key == "email"


def test_a_customer_shown_without_an_email_keeps_the_orders(client, source):
    customer = {**fixture("orders_create.json")["customer"], "email": None}

    deliver(client, source, "orders/create", order_payload(customer=customer))

    assert Customer.objects.get().email == "jon@example.com"


def test_an_older_update_arriving_after_a_newer_one_does_not_roll_the_order_back(client, source):
    newer = order_payload(cancelled_at="2025-03-03T10:00:00+01:00", updated_at="2025-03-03T10:00:00+01:00")
    older = order_payload(updated_at="2025-03-02T10:00:00+01:00")

    deliver(client, source, "orders/cancelled", newer)
    deliver(client, source, "orders/updated", older)

    assert Order.objects.get(external_id=ORDER_ID).status == OrderStatus.CANCELLED


def refunds(*amounts: str, currency: str = "EUR") -> list[dict]:
    refund = fixture("refund.json")
    transaction = refund["transactions"][0]
    refund["transactions"] = [{**transaction, "amount": amount, "currency": currency} for amount in amounts]
    return [refund]


def test_partial_and_full_refunds_in_order_updates(client, source):
    partial = order_payload(financial_status="partially_refunded", refunds=refunds("100.00", "3.00"))
    full = order_payload(financial_status="refunded", refunds=refunds("403.00"), updated_at="2025-03-09T10:00:00Z")

    deliver(client, source, "orders/updated", partial)
    assert (Order.objects.get().amount, Order.objects.get().status) == (Decimal("300.00"), OrderStatus.COMPLETED)

    deliver(client, source, "orders/updated", full)
    assert Order.objects.get().status == OrderStatus.REFUNDED


def test_a_refund_paid_in_the_buyers_currency_is_counted_in_the_shops(client, source):
    # The buyer paid 500 USD for an order of 403 EUR; 100 USD came back: 80.60 EUR.
    payload = order_payload(
        presentment_currency="USD",
        total_price_set={
            "shop_money": {"amount": "403.00", "currency_code": "EUR"},
            "presentment_money": {"amount": "500.00", "currency_code": "USD"},
        },
        financial_status="partially_refunded",
        refunds=refunds("100.00", currency="USD"),
    )

    deliver(client, source, "orders/updated", payload)

    assert Order.objects.get().amount == Decimal("322.40")


def test_a_cancelled_order(client, source):
    deliver(client, source, "orders/cancelled", order_payload(cancelled_at="2025-03-02T10:00:00+01:00"))

    assert Order.objects.get().status == OrderStatus.CANCELLED


def test_refunds_create_reads_the_order_from_the_shop(client, source, httpserver, monkeypatch):
    monkeypatch.setattr(shopify_api, "pause", lambda seconds: None)
    shop = FakeShopify(httpserver)
    jon = a_customer(int(CUSTOMER_ID), "jon@example.com")
    refunded = {"total": "403.00", "refunded": "103.00", "displayFinancialStatus": "PARTIALLY_REFUNDED"}
    shop.orders = [an_order(int(ORDER_ID), jon, updatedAt="2025-03-05T11:00:00Z", **refunded)]  # as the shop has it now
    deliver(client, source, "orders/create", order_payload())

    assert deliver(client, source, "refunds/create", fixture("refund.json")) == DeliveryState.PROCESSED

    assert shop.queries("order(id:")[0]["variables"] == {"id": f"gid://shopify/Order/{ORDER_ID}"}
    assert Order.objects.get().amount == Decimal("300.00")


def test_a_customer_update_stores_email_and_sms_consent(client, source):
    deliver(client, source, "customers/update", fixture("customers_update.json"))

    bob = Customer.objects.get(external_id="706405506930370084")
    assert (bob.email, bob.name) == ("bob@example.com", "Bob Biller")
    assert (bob.email_consent, bob.email_consent_source) == (ConsentState.UNSUBSCRIBED, "shopify confirmed_opt_in")
    assert (bob.sms_consent, bob.sms_consent_at.isoformat()) == (ConsentState.SUBSCRIBED, "2025-03-02T08:29:00+00:00")


@pytest.mark.parametrize(
    ("topic", "payload", "customer_id"),
    [
        ("customers/delete", "customers_delete.json", "706405506930370084"),
        ("customers/redact", "customers_redact.json", CUSTOMER_ID),
    ],
)
def test_a_deleted_or_redacted_customer_is_erased(client, source, topic, payload, customer_id):
    deliver(client, source, "customers/update", {**fixture("customers_update.json"), "id": int(customer_id)})

    deliver(client, source, topic, fixture(payload))

    customer = Customer.objects.get()
    assert customer.erased_at is not None
    assert (customer.email, customer.name) == ("", "")
    assert customer.external_id != customer_id


def test_a_redacted_guest_is_erased_by_email(client, source):
    deliver(client, source, "orders/create", order_payload(customer=None))

    deliver(client, source, "customers/redact", fixture("customers_redact.json"))

    assert Customer.objects.get().erased_at is not None


@pytest.mark.parametrize(
    ("topic", "payload"),
    [("shop/redact", "shop_redact.json"), ("customers/data_request", "customers_data_request.json")],
)
def test_shop_redact_and_data_requests_are_acknowledged_and_write_nothing(client, source, topic, payload):
    assert deliver(client, source, topic, fixture(payload)) == DeliveryState.PROCESSED

    assert not Customer.objects.exists() and not Order.objects.exists()


def test_a_payload_of_the_wrong_shape_fails_its_delivery_with_the_reason(client, source):
    payload = copy.deepcopy(order_payload())
    del payload["created_at"], payload["processed_at"]

    assert deliver(client, source, "orders/create", payload) == DeliveryState.FAILED

    assert "created_at" in SourceDelivery.objects.get().error
