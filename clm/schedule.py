"""Default beat schedule, installed into django-celery-beat's tables after migrate.

Entries are created when missing and never overwritten, so an admin's edits survive restarts.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicTaskDefault:
    """Every `every_seconds`, or with `daily_at` ("HH:MM", UTC) once a day."""

    name: str
    task: str
    every_seconds: int = 0
    daily_at: str = ""


DEFAULT_PERIODIC_TASKS = [
    PeriodicTaskDefault(name="Worker heartbeat", task="clm.tasks.heartbeat", every_seconds=60),
    PeriodicTaskDefault(
        name="Reclassify all active lifecycle models",
        task="lifecycle.tasks.reclassify_active_models",
        every_seconds=3600,
    ),
    PeriodicTaskDefault(
        name="Fail and restart stale classification runs", task="lifecycle.tasks.sweep_stale_runs", every_seconds=300
    ),
    PeriodicTaskDefault(
        name="Fail and restart stale metrics runs", task="metrics.tasks.sweep_stale_runs", every_seconds=300
    ),
    PeriodicTaskDefault(name="Expire idempotency keys", task="clm.tasks.expire_idempotency_keys", every_seconds=3600),
    PeriodicTaskDefault(name="Metric snapshots", task="metrics.tasks.compute_metric_snapshots", every_seconds=3600),
    PeriodicTaskDefault(
        name="Daily pipeline series", task="metrics.tasks.compute_pipeline_snapshots", every_seconds=3600
    ),
    PeriodicTaskDefault(
        name="Sync connected shops (changes missed by webhooks)",
        task="lifecycle.sources.tasks.sources_sync",
        every_seconds=900,
    ),
    PeriodicTaskDefault(
        name="Process webhook deliveries whose task was lost",
        task="lifecycle.sources.tasks.source_deliveries_sweep",
        every_seconds=120,
    ),
    PeriodicTaskDefault(
        name="Send due webhook deliveries (retries)",
        task="campaigns.activation.tasks.deliveries_send",
        every_seconds=60,
    ),
    PeriodicTaskDefault(
        name="Delete uploads nobody imported", task="lifecycle.sources.tasks.source_uploads_expire", every_seconds=3600
    ),
    PeriodicTaskDefault(
        name="Nightly CLV fit and RFM breakpoints", task="metrics.tasks.fit_customer_value", daily_at="02:30"
    ),
]


def periodic_tasks_ensure(*, using: str = "default", **kwargs) -> None:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for default in DEFAULT_PERIODIC_TASKS:
        if PeriodicTask.objects.using(using).filter(name=default.name).exists():
            continue
        if default.daily_at:
            hour, minute = default.daily_at.split(":")
            crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=str(int(minute)),
                hour=str(int(hour)),
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone="UTC",
            )
            PeriodicTask.objects.using(using).create(name=default.name, task=default.task, crontab=crontab)
        else:
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=default.every_seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.using(using).create(name=default.name, task=default.task, interval=interval)
