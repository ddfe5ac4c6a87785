"""Beat fires an entry an admin switched to a crontab while beat runs at its minute (whatever the job then does)."""

import re
from datetime import datetime

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tests.conftest import wait_for

NIGHTLY = "Nightly CLV fit and RFM breakpoints"


@pytest.mark.django_db(transaction=True)
def test_a_real_beat_fires_the_nightly_entry_switched_to_every_minute_at_its_minute(celery_worker_process, tmp_path):
    # Beat loads only the crontabs due within two hours of now: except from 00:00 to 04:59 UTC, the 02:30 entry is not
    # loaded at all until the switch brings it in.
    task = PeriodicTask.objects.get(name=NIGHTLY)
    task.crontab, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*", timezone="UTC")
    edited_at = datetime.now().astimezone()  # the worker logs local times
    task.save()  # as in the admin, while beat runs

    sent = re.compile(
        r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): INFO/Beat\] .*Sending due task " + re.escape(NIGHTLY)
    )

    def sends_on_the_minute() -> list[datetime]:
        lines = (tmp_path / "worker.log").read_text().splitlines()
        moments = [datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").astimezone() for m in map(sent.match, lines) if m]
        return [moment for moment in moments if moment.second == 0 and moment > edited_at]

    # The next minute starts within 60 s.
    wait_for(sends_on_the_minute, timeout=75, message="beat to send the every-minute entry at second 0")
