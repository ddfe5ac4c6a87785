"""Backfill: reconstruct a model's stage history from the order/touchpoint history (SPEC §3).

A backfill over [start, end] cuts the range into periods of one day or one week, counted from `start`
(the last period may be shorter), and classifies every customer as of the end of each period (23:59:59.999999
UTC of its last day) with the ordinary reclassification (lifecycle.services): one ClassificationRun of kind
`backfill` per step, its transitions timestamped at the step's moment with cause `backfill`. A stage change
is therefore recorded at the end of the period in which it happened; a customer first seen after a step is
not classified at that step.

Because the reclassification diffs against the current-stage table, a backfill

1. deletes the model's transitions of cause `backfill` dated within the range (start 00:00 UTC to end
   23:59:59.999999 UTC) and resets the current stages to the state just before `start`, as the remaining log
   records it (each customer's last transition before `start`; no row without one) — one transaction;
2. classifies step by step; each chunk of each step is one transaction, so an interruption leaves a
   consistent log and running the same backfill again replaces what it wrote;
3. leaves the current stages as of `end`. It never classifies as of now: the next periodic run (or
   `manage.py reclassify`) moves customers on from there. If the log already holds transitions after
   `end` (live runs, or a backfill of a later range), each customer's current stage is instead restored
   to their latest transition, so that the current stage always equals the end of the log.

Transitions of other causes inside the range (live runs, reclassifications as of a past date) are kept,
and the later history is not rewritten: both are reported, since they need not agree with the
reconstructed path (see docs/LIFECYCLE_BACKFILL.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.db import connection, transaction
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from clm.base.days import day_end, day_start
from lifecycle.models import (
    ClassificationRun,
    CustomerStage,
    LifecycleModel,
    RunKind,
    StageTransition,
    TransitionCause,
)
from lifecycle.rules import model_validate
from lifecycle.services import classification_run_execute, classification_run_start


class BackfillStep(StrEnum):
    DAY = "day"
    WEEK = "week"


STEP_DAYS = {BackfillStep.DAY: 1, BackfillStep.WEEK: 7}

ProgressCallback = Callable[[int, int, ClassificationRun], None]


class BackfillError(ValueError):
    """Input a backfill cannot run with; nothing has been written."""


@dataclass(frozen=True)
class BackfillResult:
    model_key: str
    start: date
    end: date
    step: BackfillStep
    steps: int
    transitions: int  # written by this backfill
    replaced: int  # earlier backfill transitions of the range, deleted
    kept_in_range: int  # transitions of other causes inside the range, kept
    later_transitions: int  # transitions after the range, kept
    later_mismatches: int  # customers whose first later transition does not start from their stage at `end`
    current_as_of: datetime | None  # the moment the current stages reflect; None when restored from a later log


def backfill_date_parse(value: str, name: str = "date") -> date:
    """A YYYY-MM-DD date, or BackfillError naming the input."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date, no time of day
    except (TypeError, ValueError):
        raise BackfillError(f"{name} {value!r} is not a date in the form YYYY-MM-DD.") from None


def backfill_moments(*, start: date, end: date, step: BackfillStep) -> list[datetime]:
    """The as-of moments of a backfill: the end (UTC) of each period of `step` counted from `start`, up to `end`.

    Weekly over 1997-01-01..1998-06-30 gives 1997-01-07, 1997-01-14, …, 1998-06-30: 78 steps.
    """
    if start > end:
        raise BackfillError(f"The start {start.isoformat()} is after the end {end.isoformat()}.")
    today = timezone.now().date()
    if end >= today:
        raise BackfillError(
            f"The end {end.isoformat()} must be before today ({today.isoformat()}, UTC): a backfill reconstructs "
            "completed days; the current day is classified by the regular runs."
        )
    length = timedelta(days=STEP_DAYS[BackfillStep(step)])
    moments, period_start = [], start
    while period_start <= end:
        moments.append(day_end(min(period_start + length - timedelta(days=1), end)))
        period_start += length
    return moments


def model_backfill(
    *,
    model: LifecycleModel,
    start: date,
    end: date,
    step: BackfillStep = BackfillStep.WEEK,
    on_progress: ProgressCallback | None = None,
) -> BackfillResult:
    """Reconstruct `model`'s stage history over [start, end] at `step`, replacing earlier backfills of the range.

    Raises BackfillError (or RuleError, when the model cannot classify) before writing anything.
    `on_progress(done, total, run)` is called after each step.
    """
    moments = backfill_moments(start=start, end=end, step=step)
    model_validate(model)
    # The range is whole days, [start 00:00, day after end 00:00): every step's moment (23:59:59.999999) lies inside.
    range_start, range_stop = day_start(start), day_start(end + timedelta(days=1))
    log = StageTransition.objects.filter(model=model)
    in_range = log.filter(at__gte=range_start, at__lt=range_stop)

    with transaction.atomic():
        replaced, _ = in_range.filter(cause=TransitionCause.BACKFILL).delete()
        _current_restore(model=model, before=range_start)
    kept_in_range = in_range.count()

    transitions = 0
    for done, moment in enumerate(moments, start=1):
        run = classification_run_execute(run=classification_run_start(model=model, kind=RunKind.BACKFILL, as_of=moment))
        transitions += run.transitions
        if on_progress is not None:
            on_progress(done, len(moments), run)

    later = log.filter(at__gte=range_stop)
    later_transitions = later.count()
    later_mismatches = 0
    current_as_of: datetime | None = moments[-1]
    if later_transitions:
        later_mismatches = _later_mismatches(model=model, later=later)
        with transaction.atomic():
            _current_restore(model=model, before=None)
        current_as_of = None
    return BackfillResult(
        model_key=model.key,
        start=start,
        end=end,
        step=BackfillStep(step),
        steps=len(moments),
        transitions=transitions,
        replaced=replaced,
        kept_in_range=kept_in_range,
        later_transitions=later_transitions,
        later_mismatches=later_mismatches,
        current_as_of=current_as_of,
    )


def _ranked(transitions: QuerySet, *, latest_first: bool) -> QuerySet:
    """Each customer's first (or latest) transition among `transitions`, via a window (portable SQL)."""
    order = [F("at").desc(), F("id").desc()] if latest_first else [F("at").asc(), F("id").asc()]
    return (
        transitions.order_by()
        .annotate(position=Window(RowNumber(), partition_by=[F("customer_id")], order_by=order))
        .filter(position=1)
    )


def _current_restore(*, model: LifecycleModel, before: datetime | None) -> None:
    """Set the model's current stages from the log: each customer's last transition (before `before`).

    Customers without such a transition get no current-stage row. Two set-based statements.
    """
    transitions = StageTransition.objects.filter(model=model)
    if before is not None:
        transitions = transitions.filter(at__lt=before)
    last_sql, last_params = (
        _ranked(transitions, latest_first=True).values("customer_id", "to_stage_id", "at").query.sql_with_params()
    )
    current = connection.ops.quote_name(CustomerStage._meta.db_table)
    CustomerStage.objects.filter(model=model).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {current} (model_id, customer_id, stage_id, since)
            SELECT %s, latest.customer_id, latest.to_stage_id, latest.at FROM ({last_sql}) AS latest
            """,  # noqa: S608 - only a quoted table name and Django-compiled SQL are interpolated
            [model.pk, *last_params],
        )


def _later_mismatches(*, model: LifecycleModel, later: QuerySet) -> int:
    """Customers whose first transition after the range does not continue from their current (backfilled) stage."""
    first_sql, first_params = (
        _ranked(later, latest_first=False).values("customer_id", "from_stage_id").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COUNT(*) FROM ({first_sql}) AS earliest
            LEFT JOIN {connection.ops.quote_name(CustomerStage._meta.db_table)} AS current
                ON current.customer_id = earliest.customer_id AND current.model_id = %s
            WHERE COALESCE(earliest.from_stage_id, 0) <> COALESCE(current.stage_id, 0)
            """,  # noqa: S608
            [*first_params, model.pk],
        )
        return cursor.fetchone()[0]
