"""Runs that cannot overlap or stay stuck: beat started twice, and the sweeper for runs whose worker vanished."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from lifecycle.models import ClassificationRun, LifecycleModel, RunKind, RunStatus
from lifecycle.services import classification_run_start
from lifecycle.tasks import reclassify_model, sweep_stale_runs
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_a_second_periodic_pass_while_one_runs_is_skipped_with_a_log_line(eager, caplog):
    status = LifecycleModel.objects.get(key="status")
    running = classification_run_start(model=status, kind=RunKind.PERIODIC)
    with caplog.at_level(logging.WARNING, logger="lifecycle.tasks"):
        assert reclassify_model.apply(args=[status.pk, RunKind.PERIODIC]).result is None
    assert "periodic run of model status skipped: the previous one is still running" in caplog.text
    assert list(ClassificationRun.objects.values_list("pk", flat=True)) == [running.pk]


def test_the_sweeper_fails_a_stuck_run_and_starts_it_again(eager, settings, caplog, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # the clock stands still: 601 and 599 s old when swept
    settings.CLM_RUN_TIME_LIMIT = 600
    status = LifecycleModel.objects.get(key="status")
    OrderFactory()
    stuck = classification_run_start(model=status, kind=RunKind.PERIODIC)
    recent = classification_run_start(model=status, kind=RunKind.FULL)
    ClassificationRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(seconds=601))
    ClassificationRun.objects.filter(pk=recent.pk).update(started_at=timezone.now() - timedelta(seconds=599))

    with caplog.at_level(logging.ERROR, logger="lifecycle.tasks"):
        sweep_stale_runs.apply()
    stuck.refresh_from_db()
    assert stuck.status == RunStatus.FAILED and "marked failed by the sweeper" in stuck.error
    assert f"classification run {stuck.pk} of model status timed out" in caplog.text
    assert ClassificationRun.objects.get(pk=recent.pk).status == RunStatus.RUNNING  # within its limit
    again = ClassificationRun.objects.exclude(pk__in=[stuck.pk, recent.pk]).get()
    assert (again.kind, again.status, again.customers_evaluated) == (RunKind.PERIODIC, RunStatus.COMPLETED, 1)
