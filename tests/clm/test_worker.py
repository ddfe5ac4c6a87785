"""Celery wiring end to end: a real worker with beat picks up the heartbeat schedule from the database."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from clm.base.models import WorkerHeartbeat
from tests.conftest import wait_for


@pytest.mark.django_db
def test_heartbeat_is_scheduled_in_the_database_and_editable():
    task = PeriodicTask.objects.get(task="clm.tasks.heartbeat")
    assert task.enabled and task.interval.every == 60


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_and_beat_run_the_heartbeat(celery_worker_process, client):
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    heartbeat = PeriodicTask.objects.get(task="clm.tasks.heartbeat")
    heartbeat.interval = every_second
    heartbeat.save()  # as in the admin: save() tells beat the schedule changed, update() would not

    wait_for(lambda: WorkerHeartbeat.objects.filter(name="worker").exists(), timeout=60, message="a heartbeat")

    assert client.get("/health/").json()["worker"]["ok"] is True
