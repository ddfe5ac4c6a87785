"""Reclassification: one implementation for full, periodic, rule-change, backfill and event-driven runs.

A chunk of customers (an id range, or a list of ids) is classified in one transaction by two statements:

1. INSERT the transitions: the compiled model (lifecycle.rules) gives every customer's target stage;
   customers whose current stage differs (or who have none) get a transition row of this run.
2. UPSERT the current stages from exactly those transition rows.

Running the same classification again finds nothing that differs and writes nothing, so repeated or
interrupted runs converge; a failing chunk rolls back alone.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from lifecycle.models import (
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    RunKind,
    RunStatus,
    StageTransition,
    TransitionCause,
)
from lifecycle.rules import classification_queryset

logger = logging.getLogger(__name__)

CAUSE_OF_RUN = {
    RunKind.FULL: TransitionCause.MANUAL,
    RunKind.PERIODIC: TransitionCause.PERIODIC,
    RunKind.RULE_CHANGE: TransitionCause.RULE_CHANGE,
    RunKind.EVENT: TransitionCause.EVENT,
    RunKind.BACKFILL: TransitionCause.BACKFILL,
}


@dataclass(frozen=True)
class ChunkResult:
    evaluated: int
    transitions: int


def _sql_names() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {"transition": quote(StageTransition._meta.db_table), "current": quote(CustomerStage._meta.db_table)}


def customers_classify(
    *,
    model: LifecycleModel,
    run: ClassificationRun,
    id_range: tuple[int, int] | None = None,
    customer_ids: Sequence[int] | None = None,
) -> ChunkResult:
    """Classify one chunk of customers as of the run's as_of, in one transaction."""
    chunk = Q()
    if id_range is not None:
        chunk &= Q(pk__gte=id_range[0], pk__lte=id_range[1])
    if customer_ids is not None:
        chunk &= Q(pk__in=list(customer_ids))
    customers = classification_queryset(model, run.as_of).filter(chunk)
    target_sql, target_params = customers.values("id", "target_stage_id").query.sql_with_params()
    names = _sql_names()
    cause = CAUSE_OF_RUN[RunKind(run.kind)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {names["transition"]} (customer_id, model_id, from_stage_id, to_stage_id, at, cause, run_id)
            SELECT target.id, %s, current.stage_id, target.target_stage_id, %s, %s, %s
            FROM ({target_sql}) AS target
            LEFT JOIN {names["current"]} AS current ON current.customer_id = target.id AND current.model_id = %s
            WHERE current.stage_id IS NULL OR current.stage_id <> target.target_stage_id
            """,  # noqa: S608 - only quoted table names and Django-compiled SQL are interpolated
            # The backend's own adaptation: SQLite stores datetimes as text and compares them as text.
            [model.pk, connection.ops.adapt_datetimefield_value(run.as_of), cause, run.pk, *target_params, model.pk],
        )
        transitions = max(cursor.rowcount, 0)
        if transitions:
            scope, scope_params = _run_scope(id_range, customer_ids)
            cursor.execute(
                f"""
                INSERT INTO {names["current"]} (model_id, customer_id, stage_id, since)
                SELECT model_id, customer_id, to_stage_id, at FROM {names["transition"]}
                WHERE run_id = %s {scope}
                ON CONFLICT (model_id, customer_id) DO UPDATE SET stage_id = excluded.stage_id, since = excluded.since
                """,  # noqa: S608
                [run.pk, *scope_params],
            )
        # Counted without the feature annotations: the order features group the classification query by customer.
        evaluated = Customer.objects.filter(chunk, first_seen_at__lte=run.as_of).count()
    return ChunkResult(evaluated=evaluated, transitions=transitions)


def _run_scope(id_range: tuple[int, int] | None, customer_ids: Sequence[int] | None) -> tuple[str, list]:
    """Restrict a run's transition rows to this chunk (a run's earlier chunks are applied already)."""
    if customer_ids is not None:
        return f"AND customer_id IN ({', '.join(['%s'] * len(customer_ids))})", list(customer_ids)
    if id_range is not None:
        return "AND customer_id BETWEEN %s AND %s", list(id_range)
    return "", []


def chunk_ranges(*, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Customer id ranges of at most `chunk_size` ids each, covering every customer."""
    size = chunk_size or settings.CLM_CLASSIFY_CHUNK_SIZE
    bounds = Customer.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    return [(start, min(start + size - 1, bounds["high"])) for start in range(bounds["low"], bounds["high"] + 1, size)]


def classification_run_fail(*, run: ClassificationRun, error: str) -> None:
    run.status, run.error, run.finished_at = RunStatus.FAILED, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


def classification_run_start(
    *, model: LifecycleModel, kind: RunKind, as_of: datetime | None = None
) -> ClassificationRun:
    return ClassificationRun.objects.create(model=model, kind=kind, as_of=as_of or timezone.now())


def classification_run_execute(
    *, run: ClassificationRun, customer_ids: Sequence[int] | None = None
) -> ClassificationRun:
    """Classify every customer (or the given ones) chunk by chunk; a failing chunk marks the run failed."""
    model = run.model
    try:
        if customer_ids is not None:
            chunks = [{"customer_ids": list(customer_ids)}]
        else:
            chunks = [{"id_range": id_range} for id_range in chunk_ranges()]
        for chunk in chunks:
            result = customers_classify(model=model, run=run, **chunk)
            run.customers_evaluated += result.evaluated
            run.transitions += result.transitions
            ClassificationRun.objects.filter(pk=run.pk).update(
                customers_evaluated=run.customers_evaluated, transitions=run.transitions
            )
    except Exception as exc:
        logger.exception("classification run %s of model %s failed", run.pk, model.key)
        classification_run_fail(run=run, error=f"{type(exc).__name__}: {exc}")
        raise
    run.status, run.finished_at = RunStatus.COMPLETED, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


def model_reclassify(
    *, model: LifecycleModel, kind: RunKind = RunKind.FULL, as_of: datetime | None = None
) -> ClassificationRun:
    """A full run of one model, recorded."""
    return classification_run_execute(run=classification_run_start(model=model, kind=kind, as_of=as_of))


def customers_reclassify(*, customer_ids: Sequence[int]) -> list[ClassificationRun]:
    """Reclassify a few customers (after their data changed) in every active model, as of now."""
    return [
        classification_run_execute(
            run=classification_run_start(model=model, kind=RunKind.EVENT), customer_ids=customer_ids
        )
        for model in LifecycleModel.objects.filter(active=True, fallback_stage__isnull=False)
    ]
