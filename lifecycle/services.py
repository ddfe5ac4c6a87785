"""Reclassification: one implementation for full, periodic, rule-change, backfill and event-driven runs.

A chunk of customers (an id range, or a list of ids) is classified in one transaction by two statements:

1. INSERT the transitions: the compiled model (lifecycle.rules) gives every customer's target stage;
   customers whose current stage differs (or who have none: stage ids are positive) get a transition row of this
   run. The current stage is looked up per customer through the (model, customer) key, not joined: with statistics
   that did not know the model's rows yet (its first pass, before ANALYZE) PostgreSQL joined every customer of the
   chunk with all of them, and a 10,000-customer chunk at 1M took minutes instead of a second.
2. UPSERT the current stages from exactly those transition rows.

Running the same classification again finds nothing that differs and writes nothing, so repeated or
interrupted runs converge; a failing chunk rolls back alone.

A run over all customers is cut into ClassificationChunk rows (customer id ranges) that any worker can take:
lifecycle.tasks fans them out as a Celery group, tests and commands execute them here one after the other.
Ingestion records changed customers in the ChangedCustomer outbox; a periodic pass whose rules are unchanged since
the last complete pass classifies only them and the customers whose time-based conditions crossed a threshold.
"""

import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from lifecycle.features import EVENT_CLOCK_CUSTOMERS_APPEARING, EventClock
from lifecycle.models import (
    ChangedCustomer,
    ChunkStatus,
    ClassificationChunk,
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    RunKind,
    RunStatus,
    StageTransition,
    TransitionCause,
)
from lifecycle.rules import StoredRules, classification_queryset, model_conditions, model_fingerprint, stored_rules

logger = logging.getLogger(__name__)

CAUSE_OF_RUN = {
    RunKind.FULL: TransitionCause.MANUAL,
    RunKind.PERIODIC: TransitionCause.PERIODIC,
    RunKind.RULE_CHANGE: TransitionCause.RULE_CHANGE,
    RunKind.EVENT: TransitionCause.EVENT,
    RunKind.BACKFILL: TransitionCause.BACKFILL,
}
# Runs that leave every customer classified as of their as_of: the base an incremental pass continues from.
COVERING_KINDS = [RunKind.FULL, RunKind.PERIODIC, RunKind.RULE_CHANGE, RunKind.BACKFILL]
OUTBOX_BATCH = 5000


@dataclass(frozen=True)
class ChunkResult:
    evaluated: int
    transitions: int


@dataclass(frozen=True)
class TransitionsWritten:
    """A chunk's stage changes, just written: the run's transition rows `WHERE run_id = run.pk {scope_sql}`."""

    run: ClassificationRun
    model: LifecycleModel
    scope_sql: str
    scope_params: list
    chunk: Q  # the chunk's customers
    stored: StoredRules | None


# Called in the chunk's transaction after its transitions are written, so what a hook writes (the activation
# app's deliveries of stage changes) commits or rolls back with them. Apps above lifecycle register here.
_TRANSITIONS_HOOKS: list[Callable[[TransitionsWritten], None]] = []


def transitions_hook_register(hook: Callable[[TransitionsWritten], None]) -> None:
    if hook not in _TRANSITIONS_HOOKS:
        _TRANSITIONS_HOOKS.append(hook)


def _sql_names() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "transition": quote(StageTransition._meta.db_table),
        "current": quote(CustomerStage._meta.db_table),
        "changed": quote(ChangedCustomer._meta.db_table),
    }


def customers_classify(
    *,
    model: LifecycleModel,
    run: ClassificationRun,
    id_range: tuple[int, int] | None = None,
    customer_ids: Sequence[int] | None = None,
    stored: StoredRules | None = None,
) -> ChunkResult:
    """Classify one chunk of customers as of the run's as_of, in one transaction (`stored`: the model's rules, read
    already)."""
    chunk = Q()
    if id_range is not None:
        chunk &= Q(pk__gte=id_range[0], pk__lte=id_range[1])
    if customer_ids is not None:
        chunk &= Q(pk__in=list(customer_ids))
    customers = classification_queryset(model, run.as_of, stored=stored).filter(chunk)
    target_sql, target_params = customers.values("id", "target_stage_id").query.sql_with_params()
    names = _sql_names()
    cause = CAUSE_OF_RUN[RunKind(run.kind)]
    # Callers run chunks and event runs in their own transaction: no savepoint (two round trips per model).
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The statement's estimated cost crosses PostgreSQL's JIT thresholds, and compiling it took longer than
            # running it: 183 ms of JIT on a 10,000-customer chunk that ran in 260 ms without (BENCHMARKS.md).
            cursor.execute("SET LOCAL jit = off")
        _customers_lock(cursor, id_range, customer_ids)
        cursor.execute(
            f"""
            INSERT INTO {names["transition"]} (customer_id, model_id, from_stage_id, to_stage_id, at, cause, run_id)
            SELECT compared.id, %s, compared.current_stage_id, compared.target_stage_id, %s, %s, %s
            FROM (
                SELECT target.id, target.target_stage_id, (
                    SELECT current.stage_id FROM {names["current"]} AS current
                    WHERE current.model_id = %s AND current.customer_id = target.id
                ) AS current_stage_id
                FROM ({target_sql}) AS target
            ) AS compared
            WHERE COALESCE(compared.current_stage_id, 0) <> compared.target_stage_id
            """,  # noqa: S608 - only quoted table names and Django-compiled SQL are interpolated
            # The backend's own adaptation: SQLite stores datetimes as text and compares them as text.
            [model.pk, _db_datetime(run.as_of), cause, run.pk, model.pk, *target_params],
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
            written = TransitionsWritten(run, model, scope, scope_params, chunk, stored)
            for hook in _TRANSITIONS_HOOKS:
                hook(written)
        # Counted without the feature annotations: the order features group the classification query by customer.
        evaluated = Customer.objects.filter(chunk, first_seen_at__lte=run.as_of).count()
    return ChunkResult(evaluated=evaluated, transitions=transitions)


# Advisory locks of the classification: one per bucket of LOCK_BUCKET customer ids (key space "CLM" + bucket).
LOCK_NAMESPACE = 0x434C4D
LOCK_BUCKET = 1000


def _customers_lock(cursor, id_range: tuple[int, int] | None, customer_ids: Sequence[int] | None) -> None:
    """Serialise runs classifying the same customers (an event run during a full pass): the second waits, then
    reads the stage the first wrote, so every transition starts from the stage that was current.

    Transaction-scoped advisory locks on buckets of customer ids, taken in ascending order (no deadlock between
    overlapping runs): held in memory, where row locks would write every customer's row in a pass that changes
    nothing, and ingestion never waits for them. SQLite serialises all writers anyway.
    """
    if connection.vendor != "postgresql":
        return
    if customer_ids is not None:
        buckets = sorted({customer_id // LOCK_BUCKET for customer_id in customer_ids})
    elif id_range is not None:
        buckets = list(range(id_range[0] // LOCK_BUCKET, id_range[1] // LOCK_BUCKET + 1))
    else:
        return
    cursor.execute(
        "SELECT COUNT(pg_advisory_xact_lock(%s, bucket)) FROM unnest(%s::integer[]) AS bucket",
        [LOCK_NAMESPACE, buckets],
    )


def _db_datetime(moment: datetime) -> datetime | str | None:
    """The moment as the backend's driver takes it: PostgreSQL the datetime itself, SQLite ISO text."""
    return connection.ops.adapt_datetimefield_value(moment)


def _run_scope(id_range: tuple[int, int] | None, customer_ids: Sequence[int] | None) -> tuple[str, list]:
    """Restrict a run's transition rows to this chunk (a run's earlier chunks are applied already)."""
    if customer_ids is not None:
        return f"AND customer_id IN ({', '.join(['%s'] * len(customer_ids))})", list(customer_ids)
    if id_range is not None:
        return "AND customer_id BETWEEN %s AND %s", list(id_range)
    return "", []


# --- the changed-customers outbox ------------------------------------------------------------------------------


def customers_mark_changed(*, customer_ids: Iterable[int]) -> None:
    """Record, in the caller's transaction, that these customers' data changed: every active model reclassifies
    them at its next run, whether or not the broker took the event-driven task. One INSERT … SELECT per batch: it
    is on the path of every ingestion."""
    ids = sorted(set(customer_ids))
    quote = connection.ops.quote_name
    customer, model = quote(Customer._meta.db_table), quote(LifecycleModel._meta.db_table)
    now = _db_datetime(timezone.now())
    with connection.cursor() as cursor:
        for start in range(0, len(ids), OUTBOX_BATCH):
            batch = ids[start : start + OUTBOX_BATCH]
            marks = ", ".join(["%s"] * len(batch))
            # A customer's data is also their referrer's referral_count.
            cursor.execute(
                f"""
                INSERT INTO {_sql_names()["changed"]} (model_id, customer_id, changed_at)
                SELECT model.id, changed.customer_id, %s
                FROM {model} AS model
                CROSS JOIN (
                    SELECT id AS customer_id FROM {customer} WHERE id IN ({marks})
                    UNION
                    SELECT referred_by_id FROM {customer} WHERE id IN ({marks}) AND referred_by_id IS NOT NULL
                ) AS changed
                WHERE model.active
                """,  # noqa: S608 - only quoted table names and placeholders are interpolated
                [now, *batch, *batch],
            )


def _changed_take(*, run: ClassificationRun, customers: Q) -> list[int]:
    """Delete the outbox rows this run settles and return their customers.

    DELETE … RETURNING first, classification after, in one transaction: every row taken was committed before the
    classification statement starts, so it sees the change; a row committed later stays for the next run; a
    rollback puts the rows back. Whatever the run's as_of: an event dated after it is found by the time clocks of
    the pass whose window holds its date.
    """
    changed = ChangedCustomer.objects.filter(customers, model=run.model_id)
    where_sql, params = changed.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_sql_names()['changed']} WHERE id IN ({where_sql}) RETURNING customer_id",  # noqa: S608
            params,
        )
        return sorted({row[0] for row in cursor.fetchall()})


def time_crossing_customers_mark(*, run: ClassificationRun, since: datetime) -> None:
    """Put into the outbox the customers whose features can have changed between `since` and the run's as_of
    without new data: an event whose timestamp, moved by a window or a rule's day count, passed as_of.

    Each clock is a range condition on an indexed timestamp; together they are a superset of the customers whose
    stage can have changed with time (the incremental pass equals a full one: tests/lifecycle/test_incremental.py).
    """
    offsets: dict[EventClock, set[int]] = {EVENT_CLOCK_CUSTOMERS_APPEARING: {0}}
    for condition in model_conditions(run.model):
        for clock in condition.feature.clocks or ():
            days = offsets.setdefault(clock, set())
            days.update(clock.windows)
            if clock.thresholds:
                for value in condition.value if isinstance(condition.value, tuple) else (condition.value,):
                    days.update({int(value), int(value) + 1})
    names = _sql_names()
    with connection.cursor() as cursor:
        for clock, days in offsets.items():
            for day_count in sorted(days):
                moved = timedelta(days=day_count)
                events: QuerySet = clock.events().filter(
                    **{
                        f"{clock.timestamp}__gt": since - moved,
                        f"{clock.timestamp}__lte": run.as_of - moved,
                        f"{clock.customer}__isnull": False,
                    }
                )
                select_sql, params = events.values(clock.customer).distinct().query.sql_with_params()
                cursor.execute(
                    f"INSERT INTO {names['changed']} (model_id, customer_id, changed_at) "  # noqa: S608
                    f"SELECT %s, crossing.{connection.ops.quote_name(clock.customer)}, %s "
                    f"FROM ({select_sql}) AS crossing",
                    [run.model_id, _db_datetime(run.as_of), *params],
                )


# --- runs and their chunks -------------------------------------------------------------------------------------


def chunk_ranges(*, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Customer id ranges of at most `chunk_size` ids each, covering every customer."""
    size = chunk_size or settings.CLM_CLASSIFY_CHUNK_SIZE
    bounds = Customer.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    return [(start, min(start + size - 1, bounds["high"])) for start in range(bounds["low"], bounds["high"] + 1, size)]


def _changed_ranges(*, run: ClassificationRun) -> list[tuple[int, int]]:
    """Id ranges holding at most `chunk_size` distinct changed customers each (one grouped query)."""
    changed = ChangedCustomer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT MIN(customer_id), MAX(customer_id) FROM (
                SELECT customer_id, (ROW_NUMBER() OVER (ORDER BY customer_id) - 1) / %s AS bucket
                FROM (SELECT DISTINCT customer_id FROM {connection.ops.quote_name(changed)} WHERE model_id = %s)
                    AS distinct_changed
            ) AS numbered GROUP BY bucket ORDER BY 1
            """,  # noqa: S608
            [settings.CLM_CLASSIFY_CHUNK_SIZE, run.model_id],
        )
        return [(low, high) for low, high in cursor.fetchall()]


def incremental_base(*, model: LifecycleModel, as_of: datetime, fingerprint: str) -> ClassificationRun | None:
    """The last run that left every customer classified under these rules, if a pass as of `as_of` can continue
    from it; None when a full pass is needed (rules changed, a backfill or a failure came last, a feature that
    moves without events is used)."""
    if any(condition.feature.clocks is None for condition in model_conditions(model)):
        return None
    last = (
        ClassificationRun.objects.filter(model=model, kind__in=COVERING_KINDS)
        .exclude(status=RunStatus.RUNNING)
        .order_by("-started_at", "-id")
        .first()
    )
    if (
        last is None
        or last.status != RunStatus.COMPLETED
        or last.kind == RunKind.BACKFILL
        or last.rules_fingerprint != fingerprint
        or last.as_of > as_of
    ):
        return None
    return last


def classification_run_fail(*, run: ClassificationRun, error: str) -> None:
    ClassificationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error=error, finished_at=timezone.now()
    )
    run.status, run.error = RunStatus.FAILED, error


def classification_run_start(
    *, model: LifecycleModel, kind: RunKind, as_of: datetime | None = None
) -> ClassificationRun:
    """Record a run. A second periodic run of a model while one is running raises IntegrityError (a constraint)."""
    with transaction.atomic():
        return ClassificationRun.objects.create(
            model=model, kind=kind, as_of=as_of or timezone.now(), rules_fingerprint=model_fingerprint(model)
        )


def classification_run_plan(*, run: ClassificationRun) -> list[ClassificationChunk]:
    """Cut a run over all customers into chunks; a periodic pass that can continue from the last one becomes
    incremental (its chunks hold only changed customers). A run with nothing to do is completed at once."""
    base = None
    if run.kind == RunKind.PERIODIC:
        base = incremental_base(model=run.model, as_of=run.as_of, fingerprint=run.rules_fingerprint)
    if base is not None:
        with transaction.atomic():
            time_crossing_customers_mark(run=run, since=base.as_of)
        run.incremental = True
        ClassificationRun.objects.filter(pk=run.pk).update(incremental=True)
        ranges = _changed_ranges(run=run)
    else:
        ranges = chunk_ranges()
    chunks = ClassificationChunk.objects.bulk_create(
        [ClassificationChunk(run=run, first_id=first, last_id=last) for first, last in ranges]
    )
    if not chunks:
        classification_run_complete_if_done(run=run)
    return chunks


def classification_chunk_execute(*, chunk: ClassificationChunk, worker: str = "") -> ChunkResult | None:
    """Classify one chunk in one transaction; None when there was nothing to do (done already, run over).

    A delivery cut off by a killed worker is rolled back by PostgreSQL and counted in `attempts`; after
    CLM_CHUNK_MAX_ATTEMPTS the chunk and its run are failed instead of being redelivered forever.
    """
    claimed = ClassificationChunk.objects.filter(
        pk=chunk.pk, status=ChunkStatus.PENDING, run__status=RunStatus.RUNNING
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return None
    chunk.refresh_from_db(fields=["attempts"])
    run = chunk.run
    if chunk.attempts > settings.CLM_CHUNK_MAX_ATTEMPTS:
        error = f"chunk {chunk.first_id}..{chunk.last_id} failed {chunk.attempts - 1} times (worker lost or error)"
        ClassificationChunk.objects.filter(pk=chunk.pk).update(status=ChunkStatus.FAILED, finished_at=timezone.now())
        classification_run_fail(run=run, error=error)
        return None
    with transaction.atomic():
        changed = _changed_take(run=run, customers=Q(customer_id__gte=chunk.first_id, customer_id__lte=chunk.last_id))
        if not run.incremental:
            result = customers_classify(model=run.model, run=run, id_range=(chunk.first_id, chunk.last_id))
        elif changed:
            result = customers_classify(model=run.model, run=run, customer_ids=changed)
        else:
            result = ChunkResult(evaluated=0, transitions=0)
        done = ClassificationChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.PENDING).update(
            status=ChunkStatus.DONE,
            worker=worker or f"{socket.gethostname()} pid {os.getpid()}",
            customers_evaluated=result.evaluated,
            transitions=result.transitions,
            finished_at=timezone.now(),
        )
        if not done:  # another delivery of the same chunk finished first: this one's writes are rolled back
            transaction.set_rollback(True)
            return None
        ClassificationRun.objects.filter(pk=run.pk).update(
            customers_evaluated=F("customers_evaluated") + result.evaluated,
            transitions=F("transitions") + result.transitions,
        )
    return result


def classification_run_complete_if_done(*, run: ClassificationRun) -> bool:
    """Complete the run when none of its chunks is pending. Called after each chunk commits, so the chunk that
    finishes last (on whichever worker) sees all others done."""
    completed = (
        ClassificationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
        .exclude(chunks__status__in=[ChunkStatus.PENDING, ChunkStatus.FAILED])
        .update(status=RunStatus.COMPLETED, finished_at=timezone.now())
    )
    return bool(completed)


def classification_run_execute(*, run: ClassificationRun) -> ClassificationRun:
    """Classify every customer in this process, chunk by chunk; a failing chunk marks the run failed. Workers run
    the same chunks in parallel instead (lifecycle.tasks)."""
    try:
        for chunk in classification_run_plan(run=run):
            chunk.run = run
            classification_chunk_execute(chunk=chunk)
        classification_run_complete_if_done(run=run)
    except Exception as exc:
        logger.exception("classification run %s of model %s failed", run.pk, run.model.key)
        classification_run_fail(run=run, error=f"{type(exc).__name__}: {exc}")
        raise
    run.refresh_from_db()
    return run


def model_reclassify(
    *, model: LifecycleModel, kind: RunKind = RunKind.FULL, as_of: datetime | None = None
) -> ClassificationRun:
    """A run of one model over all customers (a periodic one incremental when it can be), recorded."""
    return classification_run_execute(run=classification_run_start(model=model, kind=kind, as_of=as_of))


def customers_reclassify(*, customer_ids: Sequence[int]) -> list[ClassificationRun]:
    """Reclassify a few customers (after their data changed) in every active model, as of now: one event run per
    model, all in one transaction (it is on the path of every ingestion, so each model's rules are read once and
    nothing is committed twice). A failure writes nothing: the outbox rows stay for the next periodic pass."""
    ids = sorted(set(customer_ids))
    as_of = timezone.now()
    runs = []
    with transaction.atomic():
        for model in LifecycleModel.objects.filter(active=True, fallback_stage__isnull=False):
            stored = stored_rules(model)
            run = ClassificationRun.objects.create(
                model=model, kind=RunKind.EVENT, as_of=as_of, rules_fingerprint=model_fingerprint(model, stored)
            )
            _changed_take(run=run, customers=Q(customer_id__in=ids))
            result = customers_classify(model=model, run=run, customer_ids=ids, stored=stored)
            run.customers_evaluated, run.transitions = result.evaluated, result.transitions
            run.status, run.finished_at = RunStatus.COMPLETED, timezone.now()
            run.save(update_fields=["customers_evaluated", "transitions", "status", "finished_at"])
            runs.append(run)
    return runs


def runs_sweep(*, older_than: timedelta) -> list[ClassificationRun]:
    """Fail the runs still "running" after their time limit (a worker died, a message was lost) and return them,
    so that the caller can start their successors."""
    cutoff = timezone.now() - older_than
    stale = list(
        ClassificationRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=cutoff).select_related("model")
    )
    for run in stale:
        classification_run_fail(run=run, error=f"still running after {older_than}; marked failed by the sweeper")
        ClassificationChunk.objects.filter(run=run, status=ChunkStatus.PENDING).update(status=ChunkStatus.FAILED)
    return stale
