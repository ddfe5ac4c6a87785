"""Channel effectiveness (SPEC §6): for each stage × channel, do customers touched on the channel while in the
stage move forward more often than those who were not? Read from the stage transition log and the touchpoints.

Definitions (the docs repeat them for users):

- A *stay* in a stage starts with a transition into it and ends with the customer's next transition in the same
  model (the next by `at`, then id); the customer is in the stage from the start (inclusive) to the end
  (exclusive). Only transitions at or before `as_of` exist for the computation, so a stay whose end came later
  is still ongoing. A customer was *in the stage during the period* when one of their stays overlaps
  [start, end].
- *Treated* for a channel: the customer had a touchpoint on that channel during a stay in the stage, inside the
  period (start ≤ occurred_at ≤ end, and not after as_of). The *reference moment* is the first such touchpoint;
  the stay it fell in is the one judged.
- *Untreated*: every other customer in the stage during the period. The reference moment is the start of their
  first stay overlapping the period, or `start` when that stay began earlier; that stay is judged.
- *Advanced*: the judged stay ended (the customer's next transition after the reference moment) within
  `window_days` of the reference moment (a difference of at most exactly N × 24 hours) and led to a later funnel
  stage (kind funnel, higher position) — or, from an exit stage, to any funnel stage.
- Shares are advanced / customers per group; the difference is treated − untreated, with a 95 % Wald interval
  (normal approximation for the difference of two independent proportions), clipped to [−1, 1]. Either group
  empty: the difference and interval are null. Both shares 0 or 1: the interval collapses to the difference (the
  normal approximation has no spread to show there).

One aggregate statement does the work (a window function over the log for stay ends, ROW_NUMBER / FIRST_VALUE for
each customer's first stay in a stage and its outcome, a join with the touchpoints grouped per stay and channel,
ROW_NUMBER again for each customer's first touch per channel, GROUP BY per stage and per stage × channel), plus
two queries for the stages and channels: three in all, whatever the number of customers. Time differences are
compiled by Django's own database operations (microseconds on SQLite, an interval on PostgreSQL), so both
databases count the window boundary identically.
"""

from datetime import datetime, timedelta
from typing import TypedDict

from django.db import connection
from django.db.models import DateTimeField, DurationField
from django.utils import timezone

from campaigns.stats import difference_interval
from lifecycle.models import Channel, LifecycleModel, Stage, StageKind, StageTransition, Touchpoint

CONFIDENCE = 0.95
DEFAULT_WINDOW_DAYS = 30


class EffectivenessStage(TypedDict):
    key: str
    name: str
    kind: str
    position: int


class EffectivenessChannel(TypedDict):
    key: str
    name: str


class EffectivenessCell(TypedDict):
    """One stage × channel: shares are null for an empty group; the difference and its interval when either is."""

    stage: str
    channel: str
    treated: int
    treated_advanced: int
    treated_share: float | None
    untreated: int
    untreated_advanced: int
    untreated_share: float | None
    difference: float | None  # treated_share − untreated_share
    ci_low: float | None
    ci_high: float | None


class ChannelEffectivenessResult(TypedDict):
    """Per stage × active channel: do customers touched on it advance more often (channel_effectiveness_compute)?"""

    model: str
    start: str
    end: str
    as_of: str
    window_days: int
    confidence: float
    stages: list[EffectivenessStage]  # funnel order
    channels: list[EffectivenessChannel]  # active channels by key
    cells: list[EffectivenessCell]  # stage then channel order


def _counts_sql(*, channel_count: int) -> str:
    """The aggregate statement; rows (grp, stage_id, channel_id, customers, advanced, advanced_as_untreated).

    grp 0: per stage, all customers in the stage during the period, judged as untreated (first stay).
    grp 1: per stage × channel, the treated customers judged as treated, and the same customers judged as
    untreated — so untreated = grp 0 − grp 1 without pairing every customer with every channel.
    Parameters in order: model id, as_of, start, start, 'funnel', 'exit', end, start, the window duration, the
    channel ids, end, and the window duration again (see channel_effectiveness_counts).
    """
    ops = connection.ops
    q = ops.quote_name
    transitions, touchpoints, stages = (
        q(StageTransition._meta.db_table),
        q(Touchpoint._meta.db_table),
        q(Stage._meta.db_table),
    )

    def within(later: str, earlier: str) -> str:
        # The same SQL Django compiles for ExpressionWrapper(F(later) - F(earlier), DurationField()) <= timedelta.
        difference, _ = ops.subtract_temporals("DateTimeField", (later, []), (earlier, []))
        return f"{difference} <= %s"

    channel_marks = ", ".join(["%s"] * channel_count)
    ordering = "PARTITION BY t.customer_id ORDER BY t.at, t.id"
    # Each customer's stays in one stage, oldest first: row 1 is the first stay that overlaps the period (the
    # default frame starts at the partition's first row, so FIRST_VALUE reads that stay on every row).
    per_stage_customer = "PARTITION BY s.stage_id, s.customer_id ORDER BY s.entered_at, s.id"
    return f"""
        WITH log AS (
            SELECT t.id, t.customer_id, t.to_stage_id AS stage_id, t.at AS entered_at,
                   LEAD(t.at) OVER ({ordering}) AS left_at,
                   LEAD(t.to_stage_id) OVER ({ordering}) AS next_stage_id
            FROM {transitions} t
            WHERE t.model_id = %s AND t.at <= %s
        ),
        stays AS (
            SELECT l.id, l.customer_id, l.stage_id, l.entered_at, l.left_at,
                   CASE WHEN l.entered_at > %s THEN l.entered_at ELSE %s END AS from_at,
                   CASE WHEN nxt.kind = %s AND (cur.kind = %s OR nxt.position > cur.position) THEN 1 ELSE 0 END
                       AS forward
            FROM log l
            JOIN {stages} cur ON cur.id = l.stage_id
            LEFT JOIN {stages} nxt ON nxt.id = l.next_stage_id
            WHERE l.entered_at <= %s AND (l.left_at IS NULL OR l.left_at > %s)
        ),
        ranked AS (
            -- Every stay carries the outcome of its customer's first stay in the stage (judged as untreated),
            -- so the treated rows need no join back to the first stays (whose row count planners misjudge).
            SELECT s.id, s.customer_id, s.stage_id, s.left_at, s.forward, s.from_at,
                   ROW_NUMBER() OVER ({per_stage_customer}) AS rn,
                   FIRST_VALUE(
                       CASE WHEN s.forward = 1 AND {within("s.left_at", "s.from_at")} THEN 1 ELSE 0 END
                   ) OVER ({per_stage_customer}) AS first_advanced
            FROM stays s
        ),
        touches AS (
            SELECT r.id, r.stage_id, r.customer_id, r.left_at, r.forward, r.first_advanced, p.channel_id,
                   MIN(p.occurred_at) AS touched_at
            FROM ranked r
            JOIN {touchpoints} p ON p.customer_id = r.customer_id
            WHERE p.channel_id IN ({channel_marks})
              AND p.occurred_at >= r.from_at AND p.occurred_at <= %s
              AND (r.left_at IS NULL OR p.occurred_at < r.left_at)
            GROUP BY r.id, r.stage_id, r.customer_id, r.left_at, r.forward, r.first_advanced, p.channel_id
        ),
        treated AS (
            SELECT * FROM (
                SELECT x.*, ROW_NUMBER() OVER (
                    PARTITION BY x.stage_id, x.customer_id, x.channel_id ORDER BY x.touched_at, x.id
                ) AS trn
                FROM touches x
            ) first_touches WHERE trn = 1
        )
        SELECT 0 AS grp, r.stage_id, NULL AS channel_id, COUNT(*) AS customers,
               SUM(r.first_advanced) AS advanced, 0 AS advanced_as_untreated
        FROM ranked r
        WHERE r.rn = 1
        GROUP BY r.stage_id
        UNION ALL
        SELECT 1, t.stage_id, t.channel_id, COUNT(*),
               SUM(CASE WHEN t.forward = 1 AND {within("t.left_at", "t.touched_at")} THEN 1 ELSE 0 END),
               SUM(t.first_advanced)
        FROM treated t
        GROUP BY t.stage_id, t.channel_id
    """  # noqa: S608 - only quoted table names and placeholders are put into the text


def channel_effectiveness_counts(
    *, model: LifecycleModel, channel_ids: list[int], start: datetime, end: datetime, as_of: datetime, window_days: int
) -> tuple[dict[int, tuple[int, int]], dict[tuple[int, int], tuple[int, int, int]]]:
    """The raw counts of one statement: ({stage_id: (customers, advanced as untreated)}, {(stage_id, channel_id):
    (treated, advanced as treated, advanced as untreated)}). `end` must already be capped at as_of."""
    if not channel_ids:
        return {}, {}
    moment = DateTimeField().get_db_prep_value
    at = {name: moment(value, connection) for name, value in (("as_of", as_of), ("start", start), ("end", end))}
    window = DurationField().get_db_prep_value(timedelta(days=window_days), connection)
    params = [
        model.pk,
        at["as_of"],
        at["start"],
        at["start"],
        StageKind.FUNNEL.value,
        StageKind.EXIT.value,
        at["end"],
        at["start"],
        window,
        *channel_ids,
        at["end"],
        window,
    ]
    by_stage: dict[int, tuple[int, int]] = {}
    by_cell: dict[tuple[int, int], tuple[int, int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_counts_sql(channel_count=len(channel_ids)), params)
        for grp, stage_id, channel_id, customers, advanced, advanced_as_untreated in cursor.fetchall():
            if grp == 0:
                by_stage[stage_id] = (int(customers), int(advanced or 0))
            else:
                by_cell[(stage_id, channel_id)] = (int(customers), int(advanced or 0), int(advanced_as_untreated or 0))
    return by_stage, by_cell


def channel_effectiveness_compute(
    *,
    model: LifecycleModel,
    start: datetime,
    end: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    as_of: datetime | None = None,
) -> ChannelEffectivenessResult:
    """Channel effectiveness of `model` over [start, end] (both inclusive): three queries (see the module).

    `as_of` (default now) is the moment the history is read at: later transitions and touchpoints do not exist
    for the computation, so a past result can be reproduced; the period's end is capped at it. Raises ValueError
    for end before start or window_days < 1.

    Result: ChannelEffectivenessResult (JSON-serializable), one cell per stage × active channel.
    """
    if end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()}).")
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, not {window_days}.")
    as_of = as_of or timezone.now()
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk"))
    channels = list(Channel.objects.filter(active=True).order_by("key"))
    by_stage: dict[int, tuple[int, int]] = {}
    by_cell: dict[tuple[int, int], tuple[int, int, int]] = {}
    if stages and start <= as_of:
        by_stage, by_cell = channel_effectiveness_counts(
            model=model,
            channel_ids=[channel.pk for channel in channels],
            start=start,
            end=min(end, as_of),
            as_of=as_of,
            window_days=window_days,
        )

    cells: list[EffectivenessCell] = []
    for stage in stages:
        customers, advanced_all = by_stage.get(stage.pk, (0, 0))
        for channel in channels:
            treated, treated_advanced, treated_as_untreated = by_cell.get((stage.pk, channel.pk), (0, 0, 0))
            untreated, untreated_advanced = customers - treated, advanced_all - treated_as_untreated
            difference = low = high = None  # an empty group: no share to compare
            if treated and untreated:
                interval = difference_interval(
                    successes_a=untreated_advanced,
                    total_a=untreated,
                    successes_b=treated_advanced,
                    total_b=treated,
                    alpha=1 - CONFIDENCE,
                )
                difference, low, high = interval.estimate, interval.low, interval.high
            cells.append(
                {
                    "stage": stage.key,
                    "channel": channel.key,
                    "treated": treated,
                    "treated_advanced": treated_advanced,
                    "treated_share": treated_advanced / treated if treated else None,
                    "untreated": untreated,
                    "untreated_advanced": untreated_advanced,
                    "untreated_share": untreated_advanced / untreated if untreated else None,
                    "difference": difference,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return {
        "model": model.key,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": as_of.isoformat(),
        "window_days": window_days,
        "confidence": CONFIDENCE,
        "stages": [
            {"key": stage.key, "name": stage.name_en, "kind": stage.kind, "position": stage.position}
            for stage in stages
        ],
        "channels": [{"key": channel.key, "name": channel.name_en} for channel in channels],
        "cells": cells,
    }
