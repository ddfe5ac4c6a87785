"""Metrics jobs: killed mid-run (redelivered, completed, the lost run failed), beat started twice, the sweeper."""

import logging
import os
import signal
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from clm.base.locks import _lock_key
from lifecycle.models import LifecycleModel, RunStatus
from lifecycle.services import model_reclassify
from metrics.models import MetricsJob, MetricsRun, PipelineSnapshot
from metrics.services import pipeline_snapshots_compute
from metrics.tasks import compute_metric_snapshots, compute_pipeline_snapshots, sweep_stale_runs
from tests.conftest import needs_postgresql, wait_for, worker_children
from tests.factories import CustomerFactory, OrderFactory


def history() -> LifecycleModel:
    status = LifecycleModel.objects.get(key="status")
    now = timezone.now()
    for day in range(40):
        OrderFactory(
            customer=CustomerFactory(first_seen_at=now - timedelta(days=60)), placed_at=now - timedelta(days=day)
        )
    for back in (30, 10, 0):
        model_reclassify(model=status, as_of=now - timedelta(days=back))
    return status


def pipeline_rows(model) -> set[tuple]:
    return set(PipelineSnapshot.objects.filter(model=model).values_list("day", "stage_id", "count"))


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_metrics_job_killed_mid_run_is_redelivered_and_the_lost_run_is_failed(start_worker, side):
    status = history()
    worker = start_worker("victim")
    side.execute("BEGIN")
    side.execute(f"LOCK TABLE {PipelineSnapshot._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
    compute_pipeline_snapshots.delay()

    def blocked() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return cursor.fetchone()[0] > 0

    wait_for(blocked, timeout=30, message="the job to block on the lock")
    (child,) = worker_children(worker)
    os.kill(child, signal.SIGKILL)
    # The lock is released only once the killed process is gone (reaped by the worker): the job cannot finish.
    wait_for(lambda: child not in worker_children(worker), timeout=30, message="the killed process to be gone")
    side.execute("COMMIT")

    def settled() -> bool:
        runs = MetricsRun.objects.filter(job=MetricsJob.PIPELINE, model=status)
        return runs.filter(status=RunStatus.COMPLETED).exists() and not runs.filter(status=RunStatus.RUNNING).exists()

    wait_for(settled, timeout=60, message="the redelivered job to complete")
    lost = MetricsRun.objects.filter(job=MetricsJob.PIPELINE, status=RunStatus.FAILED).get()
    assert "worker lost" in lost.error
    written = pipeline_rows(status)
    pipeline_snapshots_compute(model=status)  # a clean recomputation
    assert written and written == pipeline_rows(status)


@needs_postgresql
@pytest.mark.django_db
def test_a_metrics_job_sent_twice_skips_with_a_log_line(side, caplog):
    side.execute("SELECT pg_advisory_lock(%s)", [_lock_key(f"metrics:{MetricsJob.SNAPSHOTS}:-")])  # the first one
    with caplog.at_level(logging.WARNING, logger="metrics.tasks"):
        assert compute_metric_snapshots.apply().result == 0
    assert "skipped: metrics job snapshots of model (all) is running" in caplog.text
    assert not MetricsRun.objects.exists()


@pytest.mark.django_db
def test_the_sweeper_fails_a_stuck_metrics_run_and_sends_its_job_again(eager, settings, caplog, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # the clock stands still: the run is 601 s old when swept
    settings.CLM_RUN_TIME_LIMIT = 600
    status = history()
    stuck = MetricsRun.objects.create(job=MetricsJob.PIPELINE, model=status, as_of=timezone.now())
    MetricsRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(seconds=601))
    with caplog.at_level(logging.ERROR, logger="metrics.tasks"):
        sweep_stale_runs.apply()
    stuck.refresh_from_db()
    assert stuck.status == RunStatus.FAILED and "marked failed by the sweeper" in stuck.error
    assert f"metrics run {stuck.pk} (pipeline) timed out" in caplog.text
    assert MetricsRun.objects.filter(job=MetricsJob.PIPELINE, status=RunStatus.COMPLETED).count() == 1
    assert pipeline_rows(status)
