"""The metrics jobs on their beat schedule, run by a real Celery worker with embedded beat."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from lifecycle.models import LifecycleModel, RunStatus
from lifecycle.services import model_reclassify
from metrics.models import ClvFit, CustomerValue, MetricsJob, MetricSnapshot, MetricsRun, PipelineSnapshot
from tests.conftest import wait_for
from tests.metrics.test_clv import history_create


@pytest.mark.django_db
def test_the_metrics_jobs_are_scheduled_in_the_database_and_editable():
    tasks = {task.task: task for task in PeriodicTask.objects.filter(task__startswith="metrics.tasks.")}
    assert tasks["metrics.tasks.compute_metric_snapshots"].interval.every == 3600
    assert tasks["metrics.tasks.compute_pipeline_snapshots"].interval.every == 3600
    nightly = tasks["metrics.tasks.fit_customer_value"].crontab
    assert (nightly.hour, nightly.minute) == ("2", "30")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_scheduled_metrics_jobs(celery_worker_process):
    history_create()  # a history that identifies the CLV models (tests/metrics/test_clv.py)
    model_reclassify(model=LifecycleModel.objects.get(key="status"))
    # As an admin would in the admin, every metrics entry is edited to run every 2 s (that beat fires a crontab
    # entry at its minute is tests/clm/test_beat.py's part).
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    for task in PeriodicTask.objects.filter(task__startswith="metrics.tasks."):
        task.interval, task.crontab = every_2s, None
        task.save()  # save(), not update(): beat reloads the schedule when a task is saved

    def completed(job: MetricsJob) -> bool:
        return MetricsRun.objects.filter(job=job, status=RunStatus.COMPLETED).exists()

    wait_for(lambda: completed(MetricsJob.SNAPSHOTS), timeout=90, message="the snapshot job")
    wait_for(lambda: completed(MetricsJob.PIPELINE), timeout=30, message="the pipeline job")
    wait_for(lambda: completed(MetricsJob.CLV_FIT), timeout=60, message="the nightly CLV fit")

    assert MetricSnapshot.objects.filter(kind="funnel", model__key="status").exists()
    assert PipelineSnapshot.objects.filter(model__key="status").exists()
    assert MetricsRun.objects.filter(job=MetricsJob.RFM, status=RunStatus.COMPLETED).exists()
    # The fit runs every 2 s now, each replacing the predictions in one transaction: any moment shows all 80.
    assert ClvFit.objects.filter(customers=80, repeat_customers__gt=20).exists()
    assert CustomerValue.objects.count() == 80
    assert not MetricsRun.objects.filter(status=RunStatus.FAILED).exists()
