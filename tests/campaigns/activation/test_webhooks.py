"""Stage changes sent to webhook destinations: written with the change, signed as Standard Webhooks says (checked
with the reference library), retried with the same id, in order per customer, disabled after a day of failures,
replayed by hand, the secret rotated with an overlap, and never sent to a private address in production."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug import Request, Response

from campaigns.activation.models import Delivery, DeliveryState, Destination, DestinationState
from campaigns.activation.sending import RETRY_SCHEDULE, deliveries_send_due
from campaigns.activation.services import delivery_replay, destination_save, secret_rotate
from clm.base.outbound import url_problem
from lifecycle.models import OrderStatus, RunKind
from lifecycle.services import model_reclassify
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-06-30", 18)


class Receiver:
    """A webhook receiver on pytest-httpserver: answers what it is told, keeps every request."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[Response] = []  # answered in turn; then 204
        httpserver.expect_request("/hooks", method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), request.get_data()))
        return self.answers.pop(0) if self.answers else Response(status=204)

    @property
    def url(self) -> str:
        return self.server.url_for("/hooks")

    def verified(self, secret: str) -> list[dict]:
        """Every request's body, each checked with the reference library as a receiver would."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.requests]


@pytest.fixture
def receiver(httpserver) -> Receiver:
    return Receiver(httpserver)


def destination(receiver: Receiver, **fields) -> tuple[Destination, str]:
    values = {"name": "CRM", "url": receiver.url, "event_types": ["customer.stage_changed"], "lifecycle_models": []}
    saved, secret = destination_save(destination=None, actor=None, **{**values, **fields})
    assert secret is not None and secret.startswith("whsec_")
    return saved, secret


def buyer(external_id: str, *days: str):
    customer = CustomerFactory(external_id=external_id, first_seen_at=at("2024-01-01"))
    for day in days:
        OrderFactory(customer=customer, placed_at=at(day), status=OrderStatus.COMPLETED)
    return customer


def due_now() -> None:
    """Let the retries' waits pass."""
    Delivery.objects.filter(state=DeliveryState.PENDING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_stage_change_reaches_the_webhook_signed_with_the_features_the_rules_compared(status_model, receiver):
    _, secret = destination(receiver)
    buyer("ada", "2024-05-01", "2024-06-01")
    buyer("bo")
    buyer("cy", "2023-11-02")

    model_reclassify(model=status_model, as_of=AS_OF)
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() == 3  # written with the transitions

    assert deliveries_send_due() == 3
    events = {event["data"]["customer"]["external_id"]: event for event in receiver.verified(secret)}
    ada = events["ada"]
    assert ada["type"] == "customer.stage_changed"
    assert (ada["data"]["model"], ada["data"]["from"], ada["data"]["to"]) == ("status", None, "active")
    assert ada["data"]["at"] == AS_OF.isoformat()
    assert ada["data"]["features"] == {"order_count": 2}  # active: two or more orders
    assert events["cy"]["data"]["to"] == "inactive"
    days = (AS_OF - at("2023-11-02")).days
    assert events["cy"]["data"]["features"] == {"order_count": 1, "days_since_last_order": days}
    assert events["bo"]["data"]["to"] == "prospect"
    assert events["bo"]["data"]["features"] == {}  # the fallback stage has no rule
    headers = receiver.requests[0][0]
    assert headers["Webhook-Id"].startswith("msg_") and headers["Webhook-Signature"].startswith("v1,")
    assert Delivery.objects.filter(state=DeliveryState.DELIVERED).count() == 3


def test_a_classification_that_rolls_back_leaves_no_delivery(status_model, receiver):
    destination(receiver)
    buyer("ada", "2024-05-01")

    with pytest.raises(RuntimeError), transaction.atomic():
        model_reclassify(model=status_model, as_of=AS_OF)
        raise RuntimeError("the worker died before the commit")

    assert not Delivery.objects.exists()


def test_a_backfill_tells_receivers_nothing_and_other_models_only_when_chosen(status_model, ecommerce_model, receiver):
    destination(receiver, lifecycle_models=[ecommerce_model])
    buyer("ada", "2024-05-01")

    model_reclassify(model=status_model, as_of=AS_OF)
    model_reclassify(model=ecommerce_model, kind=RunKind.BACKFILL, as_of=at("2024-04-01"))  # before her order
    assert not Delivery.objects.exists()

    model_reclassify(model=ecommerce_model, as_of=AS_OF)
    assert Delivery.objects.get().payload["model"] == "ecommerce"


def test_a_failed_attempt_is_retried_later_with_the_same_webhook_id_and_logged(status_model, receiver):
    _, secret = destination(receiver)
    buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)
    receiver.answers = [Response("down for maintenance", status=503)]

    assert deliveries_send_due() == 0
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, 503)
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=RETRY_SCHEDULE[0] - 2)
    assert deliveries_send_due() == 0  # not due yet

    due_now()
    assert deliveries_send_due() == 1
    first, second = (headers["Webhook-Id"] for headers, _ in receiver.requests)
    assert first == second == delivery.message_id
    assert len(receiver.verified(secret)) == 2
    log = list(Delivery.objects.get().attempt_log.order_by("at").values_list("status", "response_excerpt"))
    assert log == [(503, "down for maintenance"), (204, "")]


def test_a_429_waits_as_long_as_retry_after_says(status_model, receiver):
    destination(receiver)
    buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)
    receiver.answers = [Response(status=429, headers={"Retry-After": "90"})]

    deliveries_send_due()

    assert Delivery.objects.get().next_attempt_at >= timezone.now() + timedelta(seconds=85)


def test_a_customers_later_change_waits_for_the_earlier_one(status_model, receiver):
    destination(receiver)
    ada = buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)  # new
    OrderFactory(customer=ada, placed_at=at("2024-07-01"), status=OrderStatus.COMPLETED)
    model_reclassify(model=status_model, as_of=at("2024-07-02"))  # active
    receiver.answers = [Response(status=500)]

    deliveries_send_due()
    assert len(receiver.requests) == 1  # the second waits behind the first, which failed

    due_now()
    deliveries_send_due()
    stages = [json.loads(body)["data"]["to"] for _, body in receiver.requests]
    assert stages == ["new", "new", "active"]


def test_a_destination_failing_for_a_day_is_disabled_and_its_deliveries_wait_for_it(status_model, receiver):
    saved, _ = destination(receiver)
    buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)
    receiver.answers = [Response(status=500) for _ in range(len(RETRY_SCHEDULE) + 1)]

    for _ in range(len(RETRY_SCHEDULE) + 1):
        due_now()
        deliveries_send_due()

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, len(RETRY_SCHEDULE) + 1)
    saved.refresh_from_db()
    assert saved.state == DestinationState.DISABLED
    assert "failed 8 times" in saved.state_message and "500" in saved.state_message
    assert sum(RETRY_SCHEDULE) >= 24 * 3600  # the schedule covers a day

    replayed = delivery_replay(delivery=delivery)
    assert deliveries_send_due() == 0  # a disabled destination gets nothing
    Destination.objects.filter(pk=saved.pk).update(state=DestinationState.ACTIVE)
    assert deliveries_send_due() == 1
    assert receiver.requests[-1][0]["Webhook-Id"] == replayed.message_id == delivery.message_id


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(status_model, receiver, settings):
    settings.CLM_WEBHOOK_SECRET_OVERLAP_HOURS = 24
    saved, old = destination(receiver)
    new = secret_rotate(destination=saved, actor=None)
    buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)

    deliveries_send_due()
    assert receiver.verified(old) == receiver.verified(new)  # both verify
    assert len(receiver.requests[0][0]["Webhook-Signature"].split(" ")) == 2

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        delivery = Delivery.objects.get()
        delivery_replay(delivery=delivery)
        deliveries_send_due()
        headers, body = receiver.requests[-1]
        assert len(headers["Webhook-Signature"].split(" ")) == 1
        Webhook(new).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


def test_in_production_only_public_https_addresses_are_taken(settings, monkeypatch, status_model, receiver):
    settings.CLM_OUTBOUND_ALLOW_LOCAL = False
    assert "https" in url_problem("http://crm.example.com/hooks")
    for private in (
        "https://10.0.0.5/hooks",
        "https://127.0.0.1/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/",
    ):
        assert "private" in url_problem(private), private
    assert url_problem("https://localhost/hooks") is not None
    assert url_problem("https://crm.example.com/hooks") is None

    # A public name that resolves to a private address is refused when it is sent to, before any connection.
    settings.CLM_OUTBOUND_ALLOW_LOCAL = True
    saved, _ = destination(receiver)
    Destination.objects.filter(pk=saved.pk).update(url="https://crm.example.com/hooks")
    settings.CLM_OUTBOUND_ALLOW_LOCAL = False
    monkeypatch.setattr("socket.getaddrinfo", lambda *args, **kwargs: [(2, 1, 6, "", ("10.1.2.3", 443))])
    buyer("ada", "2024-05-01")
    model_reclassify(model=status_model, as_of=AS_OF)

    deliveries_send_due()

    attempt = Delivery.objects.get().attempt_log.get()
    assert attempt.status is None and "10.1.2.3, which is not public" in attempt.error
    assert receiver.requests == []


def test_with_the_broker_down_the_change_and_its_delivery_are_kept_and_the_sweep_sends_it(
    status_model, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from clm.celery import app

    _, secret = destination(receiver)
    buyer("ada", "2024-05-01")
    # Nothing listens there. The app's connection pools are set aside too, so that undo() gives them back and the
    # tests after this one reach the real broker again.
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)

    with django_capture_on_commit_callbacks(execute=True):
        run = model_reclassify(model=status_model, as_of=AS_OF)  # queuing the send fails after the commit

    assert run.transitions == 1 and Delivery.objects.get().state == DeliveryState.PENDING
    monkeypatch.undo()  # the broker is back; the beat's sweep runs the sending task
    assert deliveries_send_due() == 1
    assert receiver.verified(secret)[0]["data"]["to"] == "new"
