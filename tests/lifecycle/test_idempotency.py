"""`Idempotency-Key` on the ingestion endpoints (clm/idempotency.py, docs/API.md#idempotency)."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from clm.base.idempotency import idempotency_keys_expire
from clm.base.models import IdempotencyKey
from clm.base.services import api_key_create
from clm.tasks import expire_idempotency_keys
from lifecycle.models import Customer, Order
from tests.lifecycle.test_ingest_api import an_order, row_counts

INGEST_BATCHES = {
    "customers": [{"external_id": "c-1", "name": "Ada"}, {"external_id": "c-2", "email": "bob@example.com"}],
    "orders": [an_order("o-1"), an_order("o-2", amount="5.00", status="refunded")],
    "touchpoints": [
        {"customer_external_id": "c-1", "occurred_at": "2025-03-01", "channel": "email", "kind": "email_open"},
        {"customer_external_id": "c-1", "occurred_at": "2025-03-02", "channel": "email", "kind": "email_click"},
    ],
    "feedback": [
        {"customer_external_id": "c-1", "score": 9, "submitted_at": "2025-03-01"},
        {"external_id": "f-2", "customer_external_id": "c-1", "score": 3, "submitted_at": "2025-03-02"},
    ],
    "marketing-spend": [
        {"channel": "email", "period": "month", "date": "2025-03-01", "amount": "100.00"},
        {"channel": "email", "campaign_code": "spring", "period": "day", "date": "2025-03-02", "amount": "7"},
    ],
}


IDEMPOTENT_REPLAY = "Idempotent-Replayed"


def key_client() -> APIClient:
    _, key = api_key_create(name="shop", scopes={"read", "write"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def post(client, kind: str, payload, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/{kind}/", data=json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def customer_c1(writer):
    assert post(writer, "customers", {"external_id": "c-1", "first_seen_at": "2025-02-01"}).status_code == 201


# --- upsert: the same batch twice, with or without a key ---------------------------------------------


@pytest.mark.parametrize("kind", INGEST_BATCHES)
def test_a_batch_sent_twice_without_key_keeps_row_counts_unchanged(writer, customer_c1, kind):
    assert post(writer, kind, INGEST_BATCHES[kind]).status_code == 201
    counts = row_counts()

    second = post(writer, kind, INGEST_BATCHES[kind])

    assert second.status_code == 200
    assert second.json()["unchanged"] == 2
    assert row_counts() == counts


@pytest.mark.parametrize("kind", INGEST_BATCHES)
def test_a_replay_with_the_same_key_returns_the_first_answer_without_writing(writer, customer_c1, kind):
    first = post(writer, kind, INGEST_BATCHES[kind], key="batch-1")
    assert first.status_code == 201
    assert IDEMPOTENT_REPLAY not in first
    counts = row_counts()

    replay = post(writer, kind, INGEST_BATCHES[kind], key="batch-1")

    # The first answer (201, "created"), not what running again would say (200, "unchanged").
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay[IDEMPOTENT_REPLAY] == "true"
    assert row_counts() == counts


def test_a_replay_does_not_run_the_batch_again(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="k")
    Order.objects.filter(external_id="o-1").delete()  # were it run again, the order would come back

    assert post(writer, "orders", [an_order("o-1")], key="k").status_code == 201
    assert not Order.objects.filter(external_id="o-1").exists()


def test_whitespace_and_key_order_do_not_make_a_different_request(writer, customer_c1):
    order = an_order("o-1")
    post(writer, "orders", order, key="k")
    reordered = writer.post(
        "/api/v1/orders/",
        data="{\n" + ", ".join(f'"{name}":  {json.dumps(value)}' for name, value in reversed(order.items())) + "}",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert reordered.status_code == 201 and reordered[IDEMPOTENT_REPLAY] == "true"


def test_the_same_key_with_a_different_payload_gets_422_and_writes_nothing(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="k")
    counts = row_counts()

    response = post(writer, "orders", [an_order("o-1", amount="99.00")], key="k")

    assert response.status_code == 422
    assert "'k' was already used for a different request" in response.json()["detail"]
    assert row_counts() == counts
    assert str(Order.objects.get(external_id="o-1").amount) == "49.90"


def test_the_same_key_on_another_endpoint_is_a_different_request(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="k")
    assert (
        post(
            writer, "feedback", {"customer_external_id": "c-1", "score": 1, "submitted_at": "2025-03-01"}, "k"
        ).status_code
        == 422
    )


def test_keys_are_scoped_to_the_api_key_that_sent_them(writer, customer_c1):
    other = key_client()
    assert post(writer, "orders", [an_order("o-1")], key="k").status_code == 201
    response = post(other, "orders", [an_order("o-2")], key="k")
    assert response.status_code == 201
    assert IDEMPOTENT_REPLAY not in response
    assert Order.objects.count() == 2


def test_a_refused_request_does_not_use_up_its_key(writer):
    """A 400 writes nothing and is not stored: the client fixes the cause and retries with the same key."""
    refused = post(writer, "orders", [an_order("o-1")], key="k")
    assert refused.status_code == 400
    assert "Unknown customer" in refused.json()["errors"][0]["message"]
    post(writer, "customers", {"external_id": "c-1"})

    retried = post(writer, "orders", [an_order("o-1")], key="k")

    assert retried.status_code == 201
    assert IDEMPOTENT_REPLAY not in retried


def test_a_server_error_releases_the_key_so_a_retry_runs(writer, customer_c1, monkeypatch):
    from lifecycle.apis import ingest as apis

    real = apis.records_ingest

    def failing(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(apis, "records_ingest", failing)
    writer.raise_request_exception = False
    assert post(writer, "orders", [an_order("o-1")], key="k").status_code == 500
    assert not IdempotencyKey.objects.exists()

    monkeypatch.setattr(apis, "records_ingest", real)
    retried = post(writer, "orders", [an_order("o-1")], key="k")
    assert retried.status_code == 201 and IDEMPOTENT_REPLAY not in retried
    assert Order.objects.count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "with space"])
def test_a_malformed_key_gets_400(writer, customer_c1, key):
    response = post(writer, "orders", [an_order("o-1")], key=key)
    assert response.status_code == 400
    assert "Idempotency-Key must be 1 to 255 visible ASCII characters" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_a_key_expires_after_24_hours(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="k")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    response = post(writer, "orders", [an_order("o-2")], key="k")

    assert response.status_code == 201 and IDEMPOTENT_REPLAY not in response
    assert Order.objects.count() == 2


def test_a_claim_abandoned_by_a_dead_process_is_taken_over_after_10_minutes(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="k")
    IdempotencyKey.objects.update(status=IdempotencyKey.Status.IN_FLIGHT, response_status=None, response_body=None)
    assert post(writer, "orders", [an_order("o-1")], key="k").status_code == 409

    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    response = post(writer, "orders", [an_order("o-1")], key="k")

    # It runs again: the upsert finds the order written by the dead request unchanged.
    assert response.status_code == 200 and response.json()["unchanged"] == 1


def test_expired_keys_are_deleted_by_the_periodic_task(writer, customer_c1):
    post(writer, "orders", [an_order("o-1")], key="old")
    post(writer, "orders", [an_order("o-2")], key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))

    expire_idempotency_keys()

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_keys_expire() == 0


def test_a_logged_in_admin_can_use_keys_too(admin_client, db):
    body = json.dumps({"external_id": "c-1"})
    first = admin_client.post("/api/v1/customers/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    replay = admin_client.post("/api/v1/customers/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay[IDEMPOTENT_REPLAY] == "true"
    assert IdempotencyKey.objects.get().client.startswith("user:")


# --- a concurrent duplicate, on real PostgreSQL ------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (CI always has it)")
def test_a_duplicate_sent_while_the_first_is_in_flight_gets_409(transactional_db, monkeypatch):
    """The first request holds its key (committed) while it runs; a duplicate from another connection is refused."""
    from lifecycle.apis import ingest as apis

    writer = key_client()
    assert post(writer, "customers", {"external_id": "c-1"}).status_code == 201
    running, finish = threading.Event(), threading.Event()
    real = apis.records_ingest

    def held(**kwargs):
        running.set()
        assert finish.wait(timeout=30)
        return real(**kwargs)

    monkeypatch.setattr(apis, "records_ingest", held)
    first: dict = {}

    def send_first():
        try:
            first["response"] = post(writer, "orders", [an_order("o-1")], key="k")
        finally:
            connection.close()

    thread = threading.Thread(target=send_first)
    thread.start()
    try:
        assert running.wait(timeout=30), "the first request never reached the ingestion"
        duplicate = post(writer, "orders", [an_order("o-1")], key="k")
        different = post(writer, "orders", [an_order("o-9")], key="k")
        during = Order.objects.count()
    finally:
        finish.set()
        thread.join(timeout=30)

    assert duplicate.status_code == 409
    assert "still being processed" in duplicate.json()["detail"]
    assert different.status_code == 422
    assert during == 0
    assert first["response"].status_code == 201
    monkeypatch.setattr(apis, "records_ingest", real)
    replay = post(writer, "orders", [an_order("o-1")], key="k")
    assert (replay.status_code, replay.json()) == (201, first["response"].json())
    assert Order.objects.count() == 1 and Customer.objects.count() == 1
