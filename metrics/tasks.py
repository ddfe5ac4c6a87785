"""Metrics jobs, scheduled by beat (clm.schedule; editable in the admin). Each is a thin shell over a service."""

from datetime import date

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from lifecycle.models import LifecycleModel
from metrics.models import MetricsJob
from metrics.services import metric_snapshots_compute, metrics_run, pipeline_snapshots_compute, snapshots_prune


@shared_task(bind=True, acks_late=True, max_retries=3)
def compute_metric_snapshots(self, as_of: str | None = None) -> int:
    """Hourly: the default snapshot of every metric, so pages and the API read stored rows."""
    try:
        run = metric_snapshots_compute(as_of=date.fromisoformat(as_of) if as_of else None)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc
    snapshots_prune()
    return run.rows_written


@shared_task(bind=True, acks_late=True, max_retries=3)
def compute_pipeline_snapshots(self) -> int:
    """Hourly: every active model's daily pipeline series, rebuilt from the transition log."""
    try:
        return sum(
            pipeline_snapshots_compute(model=model).rows_written for model in LifecycleModel.objects.filter(active=True)
        )
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc


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
    except ClvFitError as exc:
        # The data cannot support a fit yet (e.g. no repeat buyers): recorded on the run, the old fit stays.
        return {"error": str(exc)}
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=60) from exc
    return {"customers": fit.customers, "repeat_customers": fit.repeat_customers}
