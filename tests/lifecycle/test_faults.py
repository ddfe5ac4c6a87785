"""Faults injected into real Celery workers on real PostgreSQL: a worker killed mid-chunk, the database connection cut
mid-chunk, ingestion during a full run; and a run spread over two worker processes."""

import os
import signal
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from clm.base.services import api_key_create
from lifecycle.models import (
    ChangedCustomer,
    ChunkStatus,
    ClassificationChunk,
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    RunKind,
    RunStatus,
    StageTransition,
)
from lifecycle.rules import classification_queryset
from lifecycle.services import classification_run_start
from lifecycle.tasks import classification_run_dispatch
from tests.conftest import needs_postgresql, wait_for, worker_children
from tests.factories import CustomerFactory, OrderFactory
from tests.tcp_proxy import TcpProxy

pytestmark = [needs_postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def status_model():
    return LifecycleModel.objects.get(key="status")


def customers_with_orders(count: int) -> None:
    """Customers first seen 400 days ago, each with 0..3 orders spread over the last year."""
    now = timezone.now()
    for number in range(count):
        customer = CustomerFactory(first_seen_at=now - timedelta(days=400))
        for order in range(number % 4):
            OrderFactory(customer=customer, placed_at=now - timedelta(days=30 + 100 * order + number % 7))


def stall_chunks(side: psycopg.Connection) -> None:
    """Chunks insert their transitions, then block on writing the current stages until `side` commits."""
    side.execute("BEGIN")
    side.execute(f"LOCK TABLE {CustomerStage._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")


def a_chunk_is_blocked() -> bool:
    # Asked on the test's own connection: the side connection's transaction would see a frozen pg_stat_activity.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def full_run_dispatch(model: LifecycleModel, settings, chunk_size: int) -> ClassificationRun:
    settings.CLM_CLASSIFY_CHUNK_SIZE = chunk_size
    run = classification_run_start(model=model, kind=RunKind.FULL)
    classification_run_dispatch(run=run)
    return run


def run_finished(run: ClassificationRun) -> bool:
    run.refresh_from_db()
    return run.status != RunStatus.RUNNING


def assert_stages_equal_a_clean_recomputation(model: LifecycleModel) -> None:
    expected = dict(classification_queryset(model, timezone.now()).values_list("id", "target_stage_id"))
    current = dict(CustomerStage.objects.filter(model=model).values_list("customer_id", "stage_id"))
    assert current == expected


def assert_transition_chains_are_consistent(model: LifecycleModel) -> None:
    """Every transition leaves the stage the customer was in: no transition starts from a state that never was."""
    previous: dict[int, int | None] = {}
    rows = StageTransition.objects.filter(model=model).order_by("customer_id", "at", "id")
    for customer_id, from_stage, to_stage in rows.values_list("customer_id", "from_stage_id", "to_stage_id"):
        assert from_stage == previous.get(customer_id), f"customer {customer_id}: chain broken"
        previous[customer_id] = to_stage


def test_a_run_spreads_over_two_worker_processes(start_worker, status_model, settings):
    customers_with_orders(400)
    start_worker("one")
    start_worker("two")
    run = full_run_dispatch(status_model, settings, chunk_size=10)
    wait_for(lambda: run_finished(run), timeout=120, message="the run to finish")
    assert run.status == RunStatus.COMPLETED and run.customers_evaluated == 400 and run.transitions == 400
    workers = {
        worker.split("@")[0] for worker in ClassificationChunk.objects.filter(run=run).values_list("worker", flat=True)
    }
    assert workers == {"one", "two"}
    assert_stages_equal_a_clean_recomputation(status_model)


def test_a_worker_killed_mid_chunk_is_redelivered_and_nothing_is_lost_or_doubled(
    start_worker, status_model, settings, side
):
    customers_with_orders(60)
    worker = start_worker("victim")
    stall_chunks(side)
    run = full_run_dispatch(status_model, settings, chunk_size=20)
    wait_for(a_chunk_is_blocked, timeout=30, message="a chunk to block on the lock")
    (child,) = worker_children(worker)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: child not in worker_children(worker), timeout=30, message="the killed process to be gone")
    side.execute("COMMIT")  # the killed worker's transaction can now end: rolled back, its client is gone

    wait_for(lambda: run_finished(run), timeout=60, message="the run to finish")
    assert run.status == RunStatus.COMPLETED
    attempts = sorted(ClassificationChunk.objects.filter(run=run).values_list("attempts", flat=True))
    assert attempts == [1, 1, 2]  # the killed chunk ran again, once
    assert StageTransition.objects.filter(model=status_model).count() == 60  # one per customer: none lost or doubled
    assert run.transitions == 60 and run.customers_evaluated == 60
    assert_stages_equal_a_clean_recomputation(status_model)
    assert_transition_chains_are_consistent(status_model)


def test_a_chunk_whose_worker_keeps_dying_fails_the_run_after_its_attempts(start_worker, status_model, settings, side):
    customers_with_orders(20)
    worker = start_worker("victim", env={"CLM_CHUNK_MAX_ATTEMPTS": "1"})
    stall_chunks(side)
    run = full_run_dispatch(status_model, settings, chunk_size=100)
    wait_for(a_chunk_is_blocked, timeout=30, message="the chunk to block on the lock")
    (child,) = worker_children(worker)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: child not in worker_children(worker), timeout=30, message="the killed process to be gone")
    side.execute("COMMIT")

    wait_for(lambda: run_finished(run), timeout=60, message="the run to fail")
    assert run.status == RunStatus.FAILED and "failed 1 times" in run.error
    assert ClassificationChunk.objects.get(run=run).status == ChunkStatus.FAILED
    assert not StageTransition.objects.exists() and not CustomerStage.objects.exists()  # nothing half-written


def test_a_database_connection_cut_mid_chunk_is_retried(start_worker, status_model, settings, side):
    customers_with_orders(30)
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"], int(db["PORT"]))
    start_worker(
        "behind-proxy",
        env={"DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}", "CONN_MAX_AGE": "0"},
    )
    stall_chunks(side)
    run = full_run_dispatch(status_model, settings, chunk_size=100)
    wait_for(a_chunk_is_blocked, timeout=30, message="the chunk to block on the lock")
    proxy.cut()  # as a restart does: every connection dropped, new ones refused
    side.execute("COMMIT")
    time.sleep(2)
    proxy.restore()

    wait_for(lambda: run_finished(run), timeout=60, message="the retried chunk to finish the run")
    assert run.status == RunStatus.COMPLETED
    assert ClassificationChunk.objects.get(run=run).attempts == 2
    assert StageTransition.objects.count() == 30
    assert_stages_equal_a_clean_recomputation(status_model)
    proxy.close()


def test_ingestion_during_a_full_run_ends_in_a_clean_recomputation(start_worker, status_model, settings, api_client):
    customers_with_orders(300)
    start_worker("one")
    start_worker("two")
    _, key = api_key_create(name="shop", scopes={"write"})
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    external_ids = list(Customer.objects.order_by("pk").values_list("external_id", flat=True))
    now = timezone.now()
    stop = threading.Event()

    def ingest() -> None:
        number = 0
        while not stop.is_set() and number < 60:
            batch = [
                {
                    "external_id": f"live-{number}-{index}",
                    "customer_external_id": external_ids[(number * 7 + index * 13) % len(external_ids)],
                    "amount": "19.90",
                    "placed_at": (now - timedelta(minutes=number)).isoformat(),
                }
                for index in range(5)
            ]
            assert api_client.post("/api/v1/orders/", batch, format="json").status_code == 201
            number += 1

    run = full_run_dispatch(status_model, settings, chunk_size=10)
    ingestion = threading.Thread(target=ingest)
    ingestion.start()
    wait_for(lambda: run_finished(run), timeout=120, message="the full run to finish")
    stop.set()
    ingestion.join()
    assert run.status == RunStatus.COMPLETED
    # the event-driven runs of the ingested orders settle the outbox
    wait_for(lambda: not ChangedCustomer.objects.exists(), timeout=60, message="every change to be classified")
    wait_for(
        lambda: not ClassificationRun.objects.filter(status=RunStatus.RUNNING).exists(), timeout=60, message="idle"
    )
    assert_stages_equal_a_clean_recomputation(status_model)
    assert_transition_chains_are_consistent(status_model)
