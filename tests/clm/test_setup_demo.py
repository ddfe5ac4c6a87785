from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from clm.demo.history import demo_history_chain, demo_history_schedule
from lifecycle.models import Customer, LifecycleModel

pytestmark = pytest.mark.django_db


def test_setup_demo_on_existing_data_imports_nothing_and_prints_one_account_per_role(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    Customer.objects.create(external_id="c-1", first_seen_at="2025-01-01T00:00:00Z")
    out = StringIO()
    call_command("setup_demo", stdout=out)
    assert Customer.objects.count() == 1
    printed = out.getvalue()
    assert "First run" not in printed
    for role in ("admin", "marketer", "viewer"):
        assert f"user {role}" in printed
    assert (tmp_path / "demo-accounts.json").is_file()


def test_setup_demo_first_run_imports_cdnow_and_seeds(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    calls = []
    monkeypatch.setattr("clm.management.commands.setup_demo.call_command", lambda name, **kwargs: calls.append(name))
    call_command("setup_demo", stdout=StringIO())
    assert calls == ["import_cdnow", "seed_demo"]
    follow_up = PeriodicTask.objects.get(task="clm.tasks.demo_history")
    assert follow_up.one_off and follow_up.enabled and follow_up.start_time > timezone.now()


def test_the_first_run_queues_the_history_the_snapshots_and_the_fit():
    tasks = [(task.task, task.args) for task in demo_history_chain().tasks]
    status = LifecycleModel.objects.get(key="status")
    assert tasks == [
        ("lifecycle.tasks.backfill_model", (status.pk, "1997-01-01", "1998-06-30", "week")),
        ("metrics.tasks.compute_pipeline_snapshots", ()),
        ("metrics.tasks.compute_metric_snapshots", ("1998-06-30",)),
        ("metrics.tasks.compute_metric_snapshots", ()),
        ("metrics.tasks.fit_customer_value", ()),
    ]


@pytest.mark.django_db(transaction=True)
def test_beat_starts_the_first_run_follow_up_once(start_worker):
    from lifecycle.cdnow import CdnowFormat, cdnow_default_path, cdnow_import
    from lifecycle.models import ClassificationRun, RunKind, RunStatus
    from metrics.models import MetricsJob, MetricsRun
    from tests.conftest import wait_for

    # As on a first `make run`: setup_demo imports CDNOW (here the sample: the fit needs orders) and schedules the
    # follow-up before beat starts.
    cdnow_import(path=cdnow_default_path(CdnowFormat.SAMPLE))
    demo_history_schedule(delay_seconds=1)
    start_worker("worker", pool="solo", beat=True)

    def failed() -> list[tuple[str, str]]:
        runs = [
            *ClassificationRun.objects.filter(status=RunStatus.FAILED),
            *MetricsRun.objects.filter(status=RunStatus.FAILED),
        ]
        return [(str(run), run.error) for run in runs]

    def fitted() -> bool:
        return MetricsRun.objects.filter(job=MetricsJob.CLV_FIT, status=RunStatus.COMPLETED).exists()

    # A failed run ends the wait at once: the chain (or the fit) will not complete, and the assertion says why.
    wait_for(lambda: fitted() or failed(), timeout=120, message="the whole chain, up to a completed CLV fit")
    assert failed() == []
    assert ClassificationRun.objects.filter(kind=RunKind.BACKFILL).count() == 78  # weekly, 1997-01-01..1998-06-30
    assert MetricsRun.objects.filter(job=MetricsJob.SNAPSHOTS).count() == 2
