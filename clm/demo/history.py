"""The demo's first-run follow-up: the worker builds the history charts from the imported orders (make run)."""

from datetime import timedelta

from celery import chain
from celery.canvas import Signature
from django.utils import timezone

# The CDNOW history spans 1997-01-01 .. 1998-06-30: the demo shows its funnels, flows and trends as of then.
DEMO_HISTORY = ("1997-01-01", "1998-06-30")


def demo_history_chain() -> Signature:
    """The first run's follow-up on the worker: rebuild the default model's weekly stage history from the imported
    orders, classify the other active models, then the daily pipeline series, the metric snapshots (today and the
    end of the history) and the CLV fit, so the dashboard has its charts without waiting for the nightly jobs."""
    from lifecycle.models import LifecycleModel
    from lifecycle.tasks import backfill_model, reclassify_model
    from metrics.tasks import compute_metric_snapshots, compute_pipeline_snapshots, fit_customer_value

    model = LifecycleModel.objects.get(is_default=True)
    others = LifecycleModel.objects.filter(active=True).exclude(pk=model.pk).order_by("key")
    start, end = DEMO_HISTORY
    return chain(
        backfill_model.si(model.pk, start, end, "week"),
        *[reclassify_model.si(other.pk) for other in others],  # e.g. `ecommerce`, installed by seed_demo
        compute_pipeline_snapshots.si(),
        compute_metric_snapshots.si(end),
        compute_metric_snapshots.si(),
        fit_customer_value.si(),
    )


def demo_history_schedule(*, delay_seconds: int) -> None:
    """Have beat start the demo's follow-up once, `delay_seconds` from now (a one-off entry in the database).

    Scheduled by beat rather than sent with a countdown: a worker holds a countdown message, and stopping it then
    waits while the message is handed back; the one-off entry waits in the database, also across restarts. Should
    beat restart before it saved the entry as done, the follow-up runs again: every step of it is idempotent.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="Demo history (first run)",
        defaults={
            "task": "clm.tasks.demo_history",
            "interval": every_minute,
            "one_off": True,
            "enabled": True,
            "start_time": timezone.now() + timedelta(seconds=delay_seconds),
        },
    )
