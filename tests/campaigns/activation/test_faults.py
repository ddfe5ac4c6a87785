"""Faults with real worker processes: a worker SIGKILLed in the middle of a batch loses no event, and every event
arrives with its own webhook-id (a repeat carries the same id, so the receiver drops it)."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Request, Response

from campaigns.activation.models import Delivery, DeliveryState
from campaigns.activation.services import destination_save
from campaigns.activation.tasks import deliveries_send
from lifecycle.models import LifecycleModel, OrderStatus
from lifecycle.services import model_reclassify
from tests.conftest import wait_for, worker_children
from tests.factories import CustomerFactory, OrderFactory, at

CUSTOMERS = 40


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_no_event(start_worker, httpserver):
    received: list[str] = []

    def slow_receiver(request: Request) -> Response:
        time.sleep(0.05)
        received.append(request.headers["webhook-id"])
        return Response(status=204)

    httpserver.expect_request("/hooks", method="POST").respond_with_handler(slow_receiver)
    destination_save(
        destination=None,
        name="CRM",
        url=httpserver.url_for("/hooks"),
        event_types=["customer.stage_changed"],
        lifecycle_models=[],
        actor=None,
    )
    for number in range(CUSTOMERS):
        customer = CustomerFactory(external_id=f"c{number}", first_seen_at=at("2024-01-01"))
        OrderFactory(customer=customer, placed_at=at("2024-05-01"), status=OrderStatus.COMPLETED)
    model_reclassify(model=LifecycleModel.objects.get(key="status"), as_of=at("2024-06-30"))  # queues the send
    ids = {delivery.message_id for delivery in Delivery.objects.all()}
    assert len(ids) == CUSTOMERS

    worker = start_worker("first", pool="prefork", concurrency=1)
    wait_for(lambda: len(received) >= 3, timeout=90, message="the first events to arrive")
    for pid in [*worker_children(worker), worker.pid]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert Delivery.objects.filter(state=DeliveryState.PENDING).exists()  # killed mid-batch

    # The dead worker's lease runs out (2 minutes, passed here), and another worker sends what it held.
    Delivery.objects.filter(leased_until__isnull=False).update(leased_until=timezone.now() - timedelta(seconds=1))
    start_worker("second", pool="prefork", concurrency=1)
    deliveries_send.delay()

    wait_for(
        lambda: not Delivery.objects.exclude(state=DeliveryState.DELIVERED).exists(),
        timeout=60,
        message="every delivery to be delivered",
    )
    assert set(received) == ids  # every event arrived, each under its own id
    # Repeats only of what was in flight or not stored yet when it died (sending.SEND_CONCURRENCY + STORE_EVERY).
    assert len(received) - len(set(received)) <= 30
