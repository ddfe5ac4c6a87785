"""The webhook endpoint, whatever the platform: signature before anything else, one delivery per id, a fast
answer, the write on a worker; a disconnected or unknown source takes nothing."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from lifecycle.models import Order
from lifecycle.sources.models import DeliveryState, Platform, Source, SourceDelivery, SourceStatus
from lifecycle.sources.platforms import PLATFORMS, PlatformAdapter, WebhookDelivery, WebhookRefused
from lifecycle.sources.records import ShopBatch, ShopCustomer, ShopOrder
from lifecycle.sources.sync import delivery_process
from lifecycle.sources.tasks import source_deliveries_sweep

pytestmark = pytest.mark.django_db

SECRET = "hush"


def _signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _batch(topic: str, payload: dict) -> ShopBatch:
    if topic != "orders/create":
        raise WebhookRefused(f"Cannot take {topic}.")
    return ShopBatch(
        orders=[
            ShopOrder(
                id=str(payload["id"]),
                placed_at=datetime.fromisoformat(payload["created_at"]),
                currency=payload["currency"],
                total=Decimal(payload["total"]),
                status="paid",
                customer=ShopCustomer(id=str(payload["customer_id"])),
            )
        ]
    )


def _delivery(headers, payload) -> WebhookDelivery:
    topic = headers.get("X-Topic", "")
    if topic not in ("orders/create", "orders/odd"):
        raise WebhookRefused(f"Unknown topic {topic!r}.")
    return WebhookDelivery(delivery_id=headers["X-Delivery"], topic=topic)


# A platform of the tests' own: the endpoint is the same for every adapter (the real ones have their own tests).
TEST_ADAPTER = PlatformAdapter(
    key=Platform.SHOPIFY,
    credential_sets=(("access_token",),),
    default_completed_statuses=("paid",),
    webhook_topics=("orders/create",),
    signature_valid=lambda body, headers, secret: hmac.compare_digest(
        headers.get("X-Signature", ""), _signature(body, secret)
    ),
    webhook_delivery=_delivery,
    webhook_batch=_batch,
    client=lambda source: None,
)


@pytest.fixture
def source(monkeypatch) -> Source:
    monkeypatch.setitem(PLATFORMS, Platform.SHOPIFY, TEST_ADAPTER)
    return Source.objects.create(
        name="Shop",
        platform=Platform.SHOPIFY,
        shop_url="https://shop.example",
        currency="EUR",
        webhook_secret=SECRET,
        completed_statuses=["paid"],
    )


ORDER = {"id": 7, "customer_id": 3, "created_at": "2025-03-01T10:00:00+00:00", "currency": "EUR", "total": "12.50"}


def post(client, source, body: bytes, *, topic="orders/create", delivery="d-1", signature: str | None = None):
    headers = {"X-Topic": topic, "X-Delivery": delivery}
    headers["X-Signature"] = _signature(body) if signature is None else signature
    return client.post(
        f"/api/v1/sources/webhooks/{source.webhook_token}/", data=body, content_type="application/json", headers=headers
    )


def test_a_signed_delivery_is_stored_answered_and_written_by_the_worker(
    client, source, django_capture_on_commit_callbacks
):
    body = json.dumps(ORDER).encode()
    with django_capture_on_commit_callbacks() as queued:
        response = post(client, source, body)
    assert response.status_code == 200
    assert response.json() == {"detail": "Received.", "delivery_id": "d-1"}
    assert len(queued) == 1  # the write is queued for a worker, not done in the request
    assert not Order.objects.exists()

    delivery = SourceDelivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == DeliveryState.PROCESSED
    assert Order.objects.get().external_id == "7"
    source.refresh_from_db()
    assert source.last_webhook_at is not None


def test_a_replayed_delivery_is_acknowledged_and_written_once(client, source):
    body = json.dumps(ORDER).encode()
    assert post(client, source, body).status_code == 200
    replay = post(client, source, body)
    assert replay.status_code == 200
    assert replay.json()["detail"] == "Already received."
    assert SourceDelivery.objects.count() == 1
    delivery = SourceDelivery.objects.get()
    delivery_process(delivery_id=delivery.pk)
    assert delivery_process(delivery_id=delivery.pk) == DeliveryState.PROCESSED  # a second run changes nothing
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    ["", "bm90IHRoZSBzaWduYXR1cmU=", _signature(json.dumps(ORDER).encode(), "another secret")],
    ids=["missing", "forged", "other-secret"],
)
def test_a_wrong_signature_is_refused_before_anything_is_read(client, source, signature):
    response = post(client, source, json.dumps(ORDER).encode(), signature=signature)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert not SourceDelivery.objects.exists()


def test_a_source_without_a_webhook_secret_refuses_every_webhook(client, source):
    Source.objects.filter(pk=source.pk).update(webhook_secret=None)
    assert post(client, source, json.dumps(ORDER).encode()).status_code == 401


def test_a_body_that_is_not_json_is_refused_after_the_signature(client, source):
    response = post(client, source, b"<order/>")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not SourceDelivery.objects.exists()


def test_an_unknown_topic_is_refused(client, source):
    response = post(client, source, json.dumps(ORDER).encode(), topic="carts/create")
    assert response.status_code == 400
    assert response.json()["detail"] == "Unknown topic 'carts/create'."
    assert not SourceDelivery.objects.exists()


def test_a_disconnected_or_unknown_source_takes_nothing(client, source):
    body = json.dumps(ORDER).encode()
    Source.objects.filter(pk=source.pk).update(status=SourceStatus.DISCONNECTED)
    assert post(client, source, body).status_code == 410
    response = client.post("/api/v1/sources/webhooks/no-such-token/", data=body, content_type="application/json")
    assert response.status_code == 404
    assert not SourceDelivery.objects.exists()


def test_a_delivery_the_platform_module_cannot_read_fails_with_its_reason(client, source):
    post(client, source, json.dumps(ORDER).encode(), topic="orders/odd")
    delivery = SourceDelivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == DeliveryState.FAILED
    delivery.refresh_from_db()
    assert delivery.error == "Cannot take orders/odd."
    assert not Order.objects.exists()


def test_a_delivery_whose_task_was_lost_is_written_by_the_sweep(client, source):
    with time_machine.travel(datetime(2026, 1, 5, 12, 0, tzinfo=UTC), tick=False):
        post(client, source, json.dumps(ORDER).encode())  # its task never ran (broker down)
        assert source_deliveries_sweep() == 0  # too fresh: its task may still come
    with time_machine.travel(datetime(2026, 1, 5, 12, 0, tzinfo=UTC) + timedelta(minutes=3), tick=False):
        assert source_deliveries_sweep() == 1
    assert Order.objects.count() == 1
    assert SourceDelivery.objects.get().state == DeliveryState.PROCESSED
