"""The metrics jobs on their beat schedule, run by a real Celery worker with embedded beat."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from lifecycle.models import LifecycleModel, RunStatus
from lifecycle.services import model_reclassify
from metrics.models import ClvFit, CustomerValue, MetricsJob, MetricSnapshot, MetricsRun, PipelineSnapshot
from tests.conftest import wait_for
from tests.factories import CustomerFactory, OrderFactory


@pytest.mark.django_db
def test_the_metrics_jobs_are_scheduled_in_the_database_and_editable():
    tasks = {task.task: task for task in PeriodicTask.objects.filter(task__startswith="metrics.tasks.")}
    assert tasks["metrics.tasks.compute_metric_snapshots"].interval.every == 3600
    assert tasks["metrics.tasks.compute_pipeline_snapshots"].interval.every == 3600
    nightly = tasks["metrics.tasks.fit_customer_value"].crontab
    assert (nightly.hour, nightly.minute) == ("2", "30")


def _shop_with_repeat_buyers() -> None:
    """Forty buyers over a year, every other one buying again: enough for the CLV fit."""
    start = timezone.now() - timedelta(days=400)
    for n in range(40):
        customer = CustomerFactory(first_seen_at=start + timedelta(days=n))
        OrderFactory(customer=customer, placed_at=start + timedelta(days=n), amount=Decimal(20 + n))
        for k in range(n % 4):
            OrderFactory(customer=customer, placed_at=start + timedelta(days=n + 30 * (k + 1)), amount=Decimal(25 + k))
    model_reclassify(model=LifecycleModel.objects.get(key="status"))


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_scheduled_metrics_jobs(celery_worker_process):
    _shop_with_repeat_buyers()
    # Beat counts a new entry's first interval from its own start: as an admin would in the admin, the hourly entries
    # are edited to every 2 s and the nightly one to every minute.
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    every_minute, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*", timezone="UTC")
    for task in PeriodicTask.objects.filter(task__startswith="metrics.tasks."):
        if task.interval_id:
            task.interval = every_2s
        else:
            task.crontab = every_minute
        task.save()  # save(), not update(): beat reloads the schedule when a task is saved

    def completed(job: MetricsJob) -> bool:
        return MetricsRun.objects.filter(job=job, status=RunStatus.COMPLETED).exists()

    wait_for(lambda: completed(MetricsJob.SNAPSHOTS), timeout=90, message="the snapshot job")
    wait_for(lambda: completed(MetricsJob.PIPELINE), timeout=30, message="the pipeline job")
    wait_for(lambda: completed(MetricsJob.CLV_FIT), timeout=90, message="the nightly CLV fit")

    assert MetricSnapshot.objects.filter(kind="funnel", model__key="status").exists()
    assert PipelineSnapshot.objects.filter(model__key="status").exists()
    assert MetricsRun.objects.filter(job=MetricsJob.RFM, status=RunStatus.COMPLETED).exists()
    fit = ClvFit.objects.get()
    assert fit.repeat_customers == 30 and CustomerValue.objects.count() == 40
    assert not MetricsRun.objects.filter(status=RunStatus.FAILED).exists()
