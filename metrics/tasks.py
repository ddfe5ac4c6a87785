"""Metrics jobs, scheduled by beat (clm.schedule; editable in the admin). Each is a thin shell over a service."""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from lifecycle.models import LifecycleModel
from metrics.models import MetricsJob
from metrics.services import (
    JobAlreadyRunning,
    metric_snapshots_compute,
    metrics_run,
    metrics_runs_sweep,
    pipeline_snapshots_compute,
    snapshots_prune,
)

logger = logging.getLogger(__name__)


def _busy(task, busy: JobAlreadyRunning, skipped_result):
    """Beat sent the job while it runs: skip. A redelivered message (its worker was killed) may still see the dead
    worker's lock for a moment, until PostgreSQL notices the lost connection: try again shortly."""
    if task.request.delivery_info and task.request.delivery_info.get("redelivered"):
        raise task.retry(exc=busy, countdown=5)
    logger.warning("skipped: %s", busy)
    return skipped_result


@shared_task(bind=True, acks_late=True, max_retries=3)
def compute_metric_snapshots(self, as_of: str | None = None) -> int:
    """Hourly: the default snapshot of every metric, so pages and the API read stored rows."""
    try:
        run = metric_snapshots_compute(as_of=date.fromisoformat(as_of) if as_of else None)
    except JobAlreadyRunning as busy:
        return _busy(self, busy, 0)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc
    snapshots_prune()
    return run.rows_written


@shared_task(bind=True, acks_late=True, max_retries=3)
def compute_pipeline_snapshots(self) -> int:
    """Hourly: every active model's daily pipeline series, rebuilt from the transition log."""
    rows = 0
    try:
        for model in LifecycleModel.objects.filter(active=True):
            try:
                rows += pipeline_snapshots_compute(model=model).rows_written
            except JobAlreadyRunning as busy:
                _busy(self, busy, 0)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc
    return rows


@shared_task(bind=True, acks_late=True, max_retries=3, soft_time_limit=3600 - 60, time_limit=3600)
def fit_customer_value(self) -> dict:
    """Nightly: RFM breakpoints and the CLV fit on every customer's history up to now."""
    from metrics.clv import ClvFitError
    from metrics.rfm import rfm_breakpoints_store
    from metrics.value import clv_fit

    as_of = timezone.now()
    try:
        with metrics_run(job=MetricsJob.RFM, as_of=as_of) as run:
            rfm_breakpoints_store(as_of=as_of, run=run)
            run.rows_written = 1
        with metrics_run(job=MetricsJob.CLV_FIT, as_of=as_of, expected=(ClvFitError,)) as run:
            fit = clv_fit(as_of=as_of, run=run)
    except JobAlreadyRunning as busy:
        return _busy(self, busy, {"error": str(busy)})
    except ClvFitError as exc:
        # The data cannot support a fit yet (e.g. no repeat buyers): recorded on the run, the old fit stays.
        return {"error": str(exc)}
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=60) from exc
    return {"customers": fit.customers, "repeat_customers": fit.repeat_customers}


JOB_TASKS = {
    MetricsJob.SNAPSHOTS: compute_metric_snapshots,
    MetricsJob.PIPELINE: compute_pipeline_snapshots,
    MetricsJob.RFM: fit_customer_value,
    MetricsJob.CLV_FIT: fit_customer_value,
}


@shared_task(ignore_result=True)
def sweep_stale_runs() -> None:
    """Metrics runs still "running" past CLM_RUN_TIME_LIMIT are failed and their job is sent again."""
    stale = metrics_runs_sweep(older_than=timedelta(seconds=settings.CLM_RUN_TIME_LIMIT))
    for run in stale:
        logger.error("metrics run %s (%s) timed out; marked failed", run.pk, run.job)
    for task in {JOB_TASKS[MetricsJob(run.job)] for run in stale}:
        task.delay()
