"""Snapshot storage, freshness and the recorded metrics jobs."""

import dataclasses
from datetime import date

import pytest
from django.test import override_settings

from clm.base.days import day_end
from lifecycle.models import LifecycleModel, RunStatus
from metrics.cac import CacResult
from metrics.filters import MetricFilters
from metrics.kinds import KINDS
from metrics.models import MetricsJob, MetricSnapshot, MetricsRun, PipelineSnapshot
from metrics.selectors import pipeline_series
from metrics.services import metric_result, metric_snapshots_compute, pipeline_snapshots_compute
from tests.factories import CustomerFactory, at, transitions_record

pytestmark = pytest.mark.django_db


def test_the_pipeline_series_stores_only_days_that_changed_and_reads_every_day(status_model):
    transitions_record(status_model, CustomerFactory(), [("prospect", at("2024-01-01")), ("new", at("2024-01-05"))])
    transitions_record(status_model, CustomerFactory(), [("new", at("2024-01-03")), ("active", at("2024-01-20"))])

    run = pipeline_snapshots_compute(model=status_model, until=date(2024, 1, 31))

    assert run.status == RunStatus.COMPLETED and run.job == MetricsJob.PIPELINE
    stored_days = sorted(set(PipelineSnapshot.objects.filter(model=status_model).values_list("day", flat=True)))
    assert stored_days == [date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 5), date(2024, 1, 20)]
    assert run.rows_written == 4 * 5  # four days × five stages

    series = pipeline_series(model=status_model, start=date(2024, 1, 2), end=date(2024, 1, 6))
    assert [day["day"] for day in series["days"]] == [date(2024, 1, d) for d in range(2, 7)]
    assert [(day["counts"]["prospect"], day["counts"]["new"]) for day in series["days"]] == [
        (1, 0),  # the 2nd: carried from the 1st
        (1, 1),
        (1, 1),
        (0, 2),
        (0, 2),
    ]
    before = pipeline_series(model=status_model, start=date(2023, 12, 30), end=date(2023, 12, 31))
    assert all(count == 0 for day in before["days"] for count in day["counts"].values())


def test_rebuilding_the_pipeline_series_replaces_it(status_model):
    customer = CustomerFactory()
    transitions_record(status_model, customer, [("prospect", at("2024-01-01"))])
    pipeline_snapshots_compute(model=status_model, until=date(2024, 1, 10))
    pipeline_snapshots_compute(model=status_model, until=date(2024, 1, 10))
    assert PipelineSnapshot.objects.filter(model=status_model).count() == 5


def test_a_metric_is_computed_once_then_read_from_its_snapshot_until_it_is_stale(status_model):
    transitions_record(status_model, CustomerFactory(), [("prospect", at("2024-01-01")), ("new", at("2024-01-05"))])
    filters = MetricFilters(as_of=day_end(date(2024, 2, 1)))

    first, computed = metric_result(kind="funnel", model=status_model, filters=filters, params={})
    assert computed is True
    again, computed = metric_result(kind="funnel", model=status_model, filters=filters, params={})
    assert computed is False and again.pk == first.pk
    assert again.result["steps"][1]["reached"] == 1

    other_filters = MetricFilters(as_of=day_end(date(2024, 2, 1)), window_days=3)
    _, computed = metric_result(kind="funnel", model=status_model, filters=other_filters, params={})
    assert computed is True  # another key

    with override_settings(CLM_METRICS_MAX_AGE=0):
        fresh, computed = metric_result(kind="funnel", model=status_model, filters=filters, params={})
    assert computed is True and fresh.computed_at > first.computed_at
    assert MetricSnapshot.objects.filter(kind="funnel", filters_key=first.filters_key).count() == 1  # replaced


def test_the_snapshot_job_stores_every_default_metric_and_records_its_run(status_model):
    run = metric_snapshots_compute(as_of=date(2024, 2, 1))

    assert run.status == RunStatus.COMPLETED and run.job == MetricsJob.SNAPSHOTS
    kinds = set(MetricSnapshot.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == set(KINDS) - {"clv_accuracy"}
    active_models = LifecycleModel.objects.filter(active=True).count()
    assert run.rows_written == MetricSnapshot.objects.filter(run=run).count() == 6 * active_models + 7


def test_one_failing_metric_fails_the_run_after_the_others_are_stored(status_model, monkeypatch):
    def broken(model, filters, params) -> CacResult:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(KINDS, "cac", dataclasses.replace(KINDS["cac"], compute=broken))

    with pytest.raises(RuntimeError, match="cac"):
        metric_snapshots_compute(as_of=date(2024, 2, 1))

    run = MetricsRun.objects.get(job=MetricsJob.SNAPSHOTS)
    assert run.status == RunStatus.FAILED and "boom" in run.error and run.finished_at is not None
    assert MetricSnapshot.objects.filter(kind="funnel").exists()
    assert not MetricSnapshot.objects.filter(kind="cac").exists()
