"""Default beat schedule, installed into django-celery-beat's tables after migrate.

Entries are created when missing and never overwritten, so an admin's edits survive restarts.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicTaskDefault:
    name: str
    task: str
    every_seconds: int


DEFAULT_PERIODIC_TASKS = [
    PeriodicTaskDefault(name="Worker heartbeat", task="clm.tasks.heartbeat", every_seconds=60),
    PeriodicTaskDefault(
        name="Reclassify all active lifecycle models",
        task="lifecycle.tasks.reclassify_active_models",
        every_seconds=3600,
    ),
]


def periodic_tasks_ensure(*, using: str = "default", **kwargs) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for default in DEFAULT_PERIODIC_TASKS:
        if PeriodicTask.objects.using(using).filter(name=default.name).exists():
            continue
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=default.every_seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.using(using).create(name=default.name, task=default.task, interval=interval)
