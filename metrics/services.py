"""Compute and store metrics: snapshots of each kind, the daily pipeline series, and the recorded jobs.

Every job is idempotent (a snapshot is an upsert of its key; the pipeline series of a model is replaced in
one transaction) and recorded as a MetricsRun, failed runs with their error.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from clm.base.days import day_end
from clm.base.locks import job_lock, proves_exclusive
from lifecycle.models import LifecycleModel, RunStatus, StageTransition
from metrics.filters import MetricFilters
from metrics.kinds import KINDS, params_key
from metrics.models import MetricsJob, MetricSnapshot, MetricsRun, PipelineSnapshot

logger = logging.getLogger(__name__)


class JobAlreadyRunning(Exception):
    """Another process runs the same job (beat started twice, or a run outlasting its interval)."""


@contextmanager
def metrics_run(
    *,
    job: MetricsJob,
    as_of: datetime,
    model: LifecycleModel | None = None,
    expected: tuple[type[Exception], ...] = (),
) -> Iterator[MetricsRun]:
    """Record a job: completed when the block ends, failed (with the error, re-raised) when it raises.

    One run of a job (and model) at a time: JobAlreadyRunning when another holds its lock. Holding the lock proves
    that runs of the job still marked running lost their worker: they are failed first.
    `expected` errors are conditions of the data (e.g. too few repeat buyers to fit): logged without a traceback.
    """
    with job_lock(f"metrics:{job}:{model.pk if model else '-'}") as acquired:
        if not acquired:
            raise JobAlreadyRunning(f"metrics job {job} of model {model.key if model else '(all)'} is running")
        if proves_exclusive():
            MetricsRun.objects.filter(job=job, model=model, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                error="worker lost: the job ended without finishing",
                finished_at=timezone.now(),
            )
        run = MetricsRun.objects.create(job=job, model=model, as_of=as_of)
        try:
            yield run
        except Exception as exc:
            if isinstance(exc, expected):
                logger.warning("metrics job %s (run %s) could not run: %s", job, run.pk, exc)
            else:
                logger.exception("metrics job %s (run %s) failed", job, run.pk)
            run.status, run.error, run.finished_at = RunStatus.FAILED, f"{type(exc).__name__}: {exc}", timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            raise
        run.status, run.finished_at = RunStatus.COMPLETED, timezone.now()
        run.save(update_fields=["status", "finished_at", "rows_written"])


def metrics_runs_sweep(*, older_than: timedelta) -> list[MetricsRun]:
    """Fail the runs still "running" after their time limit (their message was lost) and return them."""
    stale = list(MetricsRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=timezone.now() - older_than))
    MetricsRun.objects.filter(pk__in=[run.pk for run in stale]).update(
        status=RunStatus.FAILED,
        error=f"still running after {older_than}; marked failed by the sweeper",
        finished_at=timezone.now(),
    )
    return stale


def metric_snapshot_store(
    *,
    kind: str,
    model: LifecycleModel | None,
    filters: MetricFilters,
    params: dict[str, Any],
    run: MetricsRun | None = None,
) -> MetricSnapshot:
    """Compute one metric and store it under its key, replacing an older result of the same key."""
    metric = KINDS[kind]
    result = metric.compute(model, filters, params)
    key = params_key(filters, params)
    with transaction.atomic():
        MetricSnapshot.objects.filter(
            kind=kind, model=model if metric.per_model else None, as_of=filters.as_of.date(), filters_key=key
        ).delete()
        return MetricSnapshot.objects.create(
            kind=kind,
            model=model if metric.per_model else None,
            as_of=filters.as_of.date(),
            filters_key=key,
            filters={**filters.as_json(), **params},
            result=result,
            computed_at=timezone.now(),
            run=run,
        )


@dataclass(frozen=True)
class SnapshotRequest:
    kind: str
    model: LifecycleModel | None
    params: dict[str, Any]


def default_snapshot_requests(*, as_of: datetime) -> list[SnapshotRequest]:
    """What pages and the API ask for without filters (each kind's `snapshots`, per active model for the kinds
    computed per model): precomputed so they read a stored row."""
    requests: list[SnapshotRequest] = []
    for model in LifecycleModel.objects.filter(active=True):
        requests += [
            SnapshotRequest(kind.name, model, params)
            for kind in KINDS.values()
            if kind.per_model
            for params in kind.snapshots(as_of)
        ]
    requests += [
        SnapshotRequest(kind.name, None, params)
        for kind in KINDS.values()
        if not kind.per_model
        for params in kind.snapshots(as_of)
    ]
    return requests


def metric_snapshots_compute(*, as_of: date | None = None) -> MetricsRun:
    """Store every default snapshot as of a day (default today); one failing metric fails the run after the rest
    are stored, so one bad metric never hides all the others."""
    filters = MetricFilters(as_of=day_end(as_of or timezone.now().date()))
    errors: list[str] = []
    with metrics_run(job=MetricsJob.SNAPSHOTS, as_of=filters.as_of) as run:
        for request in default_snapshot_requests(as_of=filters.as_of):
            try:
                metric_snapshot_store(
                    kind=request.kind, model=request.model, filters=filters, params=request.params, run=run
                )
                run.rows_written += 1
            except Exception as exc:
                logger.exception("snapshot %s of %s failed", request.kind, request.model)
                errors.append(f"{request.kind} ({request.model.key if request.model else 'all'}): {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))
    return run


def pipeline_snapshots_compute(*, model: LifecycleModel, until: date | None = None) -> MetricsRun:
    """Rebuild a model's daily pipeline series from its whole transition log (imported history included).

    Only the days on which some count changed are stored: the series is flat in between (selectors fill the
    gaps), so years of quiet history cost no rows.
    """
    from metrics.pipeline import pipeline_daily_counts

    until = until or timezone.now().date()
    with metrics_run(job=MetricsJob.PIPELINE, as_of=day_end(until), model=model) as run:
        first = StageTransition.objects.filter(model=model).aggregate(first=Min("at"))["first"]
        rows = pipeline_daily_counts(model=model, start=first.date(), end=until) if first else []
        now = timezone.now()
        changed = _changed_days(rows)
        with transaction.atomic():
            PipelineSnapshot.objects.filter(model=model).delete()
            PipelineSnapshot.objects.bulk_create(
                [
                    PipelineSnapshot(model=model, day=day, stage_id=stage_id, count=count, computed_at=now)
                    for day, stage_id, count in rows
                    if day in changed
                ],
                batch_size=5000,
            )
        run.rows_written = sum(1 for day, _, _ in rows if day in changed)
    return run


def _changed_days(rows: list[tuple[date, int, int]]) -> set[date]:
    """Days whose counts differ from the day before (the first day always)."""
    by_day: dict[date, dict[int, int]] = {}
    for day, stage_id, count in rows:
        by_day.setdefault(day, {})[stage_id] = count
    changed, previous = set(), None
    for day in sorted(by_day):
        if by_day[day] != previous:
            changed.add(day)
        previous = by_day[day]
    return changed


def snapshots_prune(*, keep_days: int = 35) -> int:
    """Delete snapshots computed on the fly or by jobs more than `keep_days` ago (they are recomputed on demand)."""
    deleted, _ = MetricSnapshot.objects.filter(computed_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    return deleted


def metric_result(
    *, kind: str, model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]
) -> tuple[MetricSnapshot, bool]:
    """The stored result for this key when fresh (computed within CLM_METRICS_MAX_AGE seconds), else computed now
    and stored for the next request. Returns the snapshot and whether it was computed by this call."""
    metric = KINDS[kind]
    snapshot = (
        MetricSnapshot.objects.filter(
            kind=kind,
            model=model if metric.per_model else None,
            as_of=filters.as_of.date(),
            filters_key=params_key(filters, params),
            computed_at__gte=timezone.now() - timedelta(seconds=settings.CLM_METRICS_MAX_AGE),
        )
        .order_by("-computed_at")
        .first()
    )
    if snapshot is not None:
        return snapshot, False
    return metric_snapshot_store(kind=kind, model=model, filters=filters, params=params), True
