"""Shopware 6 app webhooks through the source's endpoint (signature, delivery id, each event), and the app
registration that hands the shop its webhook secret."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import DeliveryState, Source, SourceDelivery
from lifecycle.sources.shopware.registration import APP_NAME, registration_proof
from lifecycle.sources.shopware.webhooks import body_signature, signature_valid
from lifecycle.sources.sync import delivery_process
from tests.lifecycle.sources.shopware_fake import (
    FIXTURES,
    LINUS,
    NEW_ORDER,
    ORDER_IDS,
    SECRET,
    FakeShopware,
    shopware_source,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(httpserver) -> Source:
    return shopware_source(httpserver.url_for("/").rstrip("/"))


# --- webhooks -----------------------------------------------------------------------------------------------------


def webhook_body(name: str = "webhook_transaction_paid.body", **changes: Any) -> bytes:
    """A fixture's body, changed where a test needs another event, written as PHP's json_encode writes it."""
    if not changes:
        return (FIXTURES / name).read_bytes()
    body = json.loads((FIXTURES / name).read_bytes())
    order = body["data"]["payload"].get("order") if isinstance(body["data"]["payload"], dict) else None
    for key, value in changes.items():
        if key == "event":
            body["data"]["event"] = value
        elif key == "event_id":
            body["source"]["eventId"] = value
        elif key == "payment":
            order["transactions"][0]["stateMachineState"]["technicalName"] = value
        elif key == "payment_changed":
            order["transactions"][0]["updatedAt"] = value
        elif key == "order_state":
            order["stateMachineState"]["technicalName"] = value
        elif key == "order_id":
            order["id"] = value
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/").encode()


def post(client, source, body: bytes, signature: str | None = None):
    headers = {"shopware-shop-signature": body_signature(body, SECRET) if signature is None else signature}
    return client.post(
        f"/api/v1/sources/webhooks/{source.webhook_token}/", data=body, content_type="application/json", headers=headers
    )


def deliver(client, source, body: bytes) -> str:
    assert post(client, source, body).status_code == 200
    return delivery_process(delivery_id=SourceDelivery.objects.latest("id").pk)


def test_shopwares_published_signature_examples_check_out():
    assert signature_valid(
        b"body",
        {"shopware-shop-signature": "dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355"},
        "secret",
    )
    assert registration_proof(secret="test", shop_id="test", shop_url="test.de", app_name="test") == (
        "a1a38c9580bb3bcd0df226086a9783ba4087671ce4968a4469e451c517fff445"
    )


def test_a_paid_order_of_a_customer_clm_does_not_know_creates_both(client, source):
    signature = "6212c601cca035f7537aea82a8f526b5badb86a3c499375a3813ce6e3d457fd1"  # openssl, fixtures' README
    response = post(client, source, webhook_body(), signature=signature)
    assert response.json() == {"detail": "Received.", "delivery_id": "0192bf6a7c1e7a3c9d2b4e6f8a0c1d2e"}
    assert delivery_process(delivery_id=SourceDelivery.objects.get().pk) == DeliveryState.PROCESSED

    order = Order.objects.select_related("customer").get()
    assert (order.external_id, order.status, order.amount) == (NEW_ORDER, OrderStatus.COMPLETED, Decimal("49.90"))
    assert order.placed_at == datetime(2024, 10, 24, 9, 12, 33, 412000, tzinfo=UTC)
    assert order.campaign_code == "newsletter-oct"
    assert (order.customer.external_id, order.customer.email, order.customer.name) == (
        LINUS,
        "linus@example.com",
        "Linus Torvalds",
    )


@pytest.mark.parametrize("signature", ["", "0" * 64, body_signature(webhook_body(), "another secret")])
def test_a_missing_or_forged_signature_is_refused_and_nothing_stored(client, source, signature):
    response = post(client, source, webhook_body(), signature=signature)
    assert response.status_code == 401
    assert not SourceDelivery.objects.exists()


def test_a_replayed_event_is_acknowledged_and_written_once(client, source):
    assert post(client, source, webhook_body()).status_code == 200
    replay = post(client, source, webhook_body())
    assert (replay.status_code, replay.json()["detail"]) == (200, "Already received.")
    delivery_process(delivery_id=SourceDelivery.objects.get().pk)
    assert Order.objects.count() == 1


def test_a_body_that_is_not_json_is_refused(client, source):
    response = post(client, source, b"event=checkout.order.placed")
    assert response.status_code == 400
    assert not SourceDelivery.objects.exists()


def test_an_event_clm_does_not_take_is_refused(client, source):
    response = post(client, source, webhook_body(event="product.written"))
    assert response.status_code == 400
    assert "product.written" in response.json()["detail"]
    assert not SourceDelivery.objects.exists()


def test_an_older_event_arriving_after_a_newer_one_does_not_roll_the_order_back(client, source):
    refunded = webhook_body(
        event="state_enter.order_transaction.state.refunded",
        event_id="e-refunded",
        payment="refunded",
        payment_changed="2024-10-30T10:00:00.000+00:00",
    )
    assert deliver(client, source, refunded) == DeliveryState.PROCESSED
    assert deliver(client, source, webhook_body()) == DeliveryState.PROCESSED  # the payment, from before

    order = Order.objects.get()
    assert (order.status, order.amount) == (OrderStatus.REFUNDED, Decimal("49.90"))


@pytest.mark.parametrize(
    ("event", "order_state", "payment"),
    [
        ("state_enter.order.state.cancelled", "cancelled", "paid"),
        ("state_enter.order_transaction.state.cancelled", "open", "cancelled"),
    ],
)
def test_an_order_or_payment_cancelled_after_the_payment_withdraws_the_order(
    client, source, event, order_state, payment
):
    deliver(client, source, webhook_body())
    assert Order.objects.get().status == OrderStatus.COMPLETED
    cancelled = webhook_body(
        event=event,
        event_id="e-cancelled",
        order_state=order_state,
        payment=payment,
        payment_changed="2024-10-25T08:00:00.000+00:00",
    )
    assert deliver(client, source, cancelled) == DeliveryState.PROCESSED
    assert Order.objects.get().status == OrderStatus.CANCELLED


def test_a_partial_refund_reads_its_order_from_the_shop_and_reduces_the_amount(client, httpserver, source):
    shop = FakeShopware(httpserver)
    body = webhook_body(
        event="state_enter.order_transaction.state.refunded_partially",
        payment="refunded_partially",
        order_id=ORDER_IDS[1],
    )
    assert deliver(client, source, body) == DeliveryState.PROCESSED
    assert shop.asked("/api/search/order")[0]["ids"] == [ORDER_IDS[1]]
    assert Order.objects.get(external_id=ORDER_IDS[1]).amount == Decimal("50.00")


def test_a_registered_customer_comes_in_and_a_deleted_one_is_erased(client, source):
    assert deliver(client, source, webhook_body("webhook_customer_register.body")) == DeliveryState.PROCESSED
    linus = Customer.objects.get(external_id=LINUS)
    assert (linus.email, linus.name) == ("linus@example.com", "Linus Torvalds")
    assert linus.email_consent == ConsentState.NOT_SUBSCRIBED  # consent comes with the sync (newsletter recipients)

    assert deliver(client, source, webhook_body("webhook_customer_deleted.body")) == DeliveryState.PROCESSED
    linus.refresh_from_db()
    assert linus.erased_at is not None
    assert (linus.email, linus.name) == ("", "")


# --- the app registration -----------------------------------------------------------------------------------------

# Shopware's app SDK example: the app secret `my-secret` signs this query string as below
# (github.com/shopware/app-php-sdk, tests/Authentication/RequestVerifierTest.php).
REGISTRATION_QUERY = "shop-id=123&shop-url=https://my-shop.com&timestamp=1234567890"
REGISTRATION_SIGNATURE = "96c91f86c822e11444b7a57b54ef125ed86b1a639c5360d45c5397daa8c3f70b"


@pytest.fixture
def app_source(source) -> Source:
    source.webhook_secret = "my-secret"
    source.save()
    return source


def register(client, source, signature: str = REGISTRATION_SIGNATURE):
    return client.get(
        f"/api/v1/sources/shopware/{source.webhook_token}/registration/?{REGISTRATION_QUERY}",
        headers={"shopware-app-signature": signature},
    )


@time_machine.travel(datetime.fromtimestamp(1234567890 + 30, tz=UTC), tick=False)
def test_the_registration_hands_the_shop_its_secret_with_the_proof(client, app_source):
    response = register(client, app_source)
    assert response.status_code == 200
    url = f"http://testserver/api/v1/sources/shopware/{app_source.webhook_token}/registration/"
    assert response.json() == {
        "proof": registration_proof(secret="my-secret", shop_id="123", shop_url="https://my-shop.com"),
        "secret": "my-secret",
        "confirmation_url": url,
    }
    assert APP_NAME == "ClmConnector"


@time_machine.travel(datetime.fromtimestamp(1234567890 + 30, tz=UTC), tick=False)
def test_a_registration_not_signed_with_the_app_secret_is_refused(client, app_source):
    response = register(client, app_source, signature="0" * 64)
    assert response.status_code == 401
    assert "secret" not in response.json()


@time_machine.travel(datetime.fromtimestamp(1234567890 + 3600, tz=UTC), tick=False)
def test_an_old_registration_request_is_refused(client, app_source):
    assert register(client, app_source).status_code == 401


def test_the_confirmation_is_taken_when_signed_with_the_shop_secret(client, app_source):
    # The confirmation body of Shopware's registration guide.
    body = json.dumps(
        {
            "apiKey": "SWIARXBSDJRWEMJONFK2OHBNWA",
            "secretKey": "Q1QyaUg3ZHpnZURPeDV3ZkpncXdSRzJpNjdBeWM1WWhWYWd0NE0",
            "timestamp": "1592398983",
            "shopUrl": "http://my.shop.com",
            "shopId": "sqX6cqHi6hbj",
        },
        separators=(",", ":"),
    ).encode()
    url = f"/api/v1/sources/shopware/{app_source.webhook_token}/registration/"

    def confirm(signature: str):
        return client.post(
            url, data=body, content_type="application/json", headers={"shopware-shop-signature": signature}
        )

    assert confirm(body_signature(body, "my-secret")).status_code == 200
    assert confirm(body_signature(body, "another secret")).status_code == 401
