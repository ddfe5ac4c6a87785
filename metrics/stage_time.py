"""Time in stage and time to convert between funnel steps (SPEC §4), read from the stage transition log.

A *stay* starts with a transition into a stage and ends with the customer's next transition in the same model
(the next one by `at`, then id). A stay is *completed* when that next transition happened by `as_of`, *ongoing*
otherwise. Durations are counted in whole days (a stay of 6 days 23 hours counts as 6), grouped and counted in
SQL (per stage × whole day), and the percentiles and histograms are computed in Python from those counts, so
PostgreSQL and SQLite give the same numbers.

Percentiles use the nearest-rank method: the p-th percentile of n values is the smallest value v such that at
least ⌈p/100 · n⌉ of the values are <= v. It is always one of the observed whole-day values (for n = 2 the median
is the smaller one).
"""

from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from django.db import connections
from django.db.models import F, QuerySet, Value, Window
from django.db.models.functions import Floor, Lead

from lifecycle.models import LifecycleModel, Stage, StageKind
from metrics.filters import FiltersJson, MetricFilters
from metrics.funnel import first_entries, transition_log
from metrics.sql import DaysBetween

# Lower edges of the histogram bins in days; the last bin is open-ended.
BIN_EDGES: tuple[int, ...] = (0, 7, 14, 30, 60, 90, 180, 365)
PERCENTILES: tuple[int, ...] = (50, 75, 90)
# SQLite's julianday() keeps whole milliseconds and its float differences carry an error of ~1e-10 days, so a stay
# of exactly 7 days may come out as 6.9999999999 there; a nudge of ~0.09 ms before flooring makes both databases
# agree on whole days (a stay less than that short of a whole day counts as the whole day).
DAY_EPSILON = 1e-9


class HistogramBin(TypedDict):
    label: str
    min_days: int
    max_days: int | None  # null: the last bin, open-ended


class StageStays(TypedDict):
    """The stays in a stage: statistics of the completed ones (null without any)."""

    stage: str
    name: str
    name_de: str
    kind: str
    position: int
    completed: int
    ongoing: int
    median_days: int | None
    p75_days: int | None
    p90_days: int | None
    histogram: list[int]  # count per bin


class StepConversion(TypedDict):
    """The customers who reached both funnel steps, and the days between (null without any)."""

    from_stage: str
    to_stage: str
    converted: int
    median_days: int | None
    p75_days: int | None
    p90_days: int | None
    histogram: list[int]


class TimeInStageResult(TypedDict):
    """Time in each stage and between consecutive funnel steps (time_in_stage_compute)."""

    model: str
    as_of: str
    filters: FiltersJson
    percentile_method: str
    bins: list[HistogramBin]
    stages: list[StageStays]  # every stage, funnel order
    conversions: list[StepConversion]


def _whole_days(earlier: Any, later: Any) -> Floor:
    """Whole days from `earlier` to `later` (NULL when either is), the same on PostgreSQL and SQLite."""
    return Floor(DaysBetween(earlier, later) + Value(DAY_EPSILON))


def bins() -> list[HistogramBin]:
    """The histogram bins: [min_days, max_days) each, labelled "0-7" … "365+"."""
    uppers = [*BIN_EDGES[1:], None]
    return [
        {"label": f"{low}-{high}" if high is not None else f"{low}+", "min_days": low, "max_days": high}
        for low, high in zip(BIN_EDGES, uppers, strict=True)
    ]


def day_statistics(counts: dict[int, int]) -> dict[str, Any]:
    """Count, nearest-rank median / p75 / p90 and histogram of whole-day values given as {days: how many}."""
    n = sum(counts.values())
    result: dict[str, Any] = {"count": n}
    ordered = sorted(counts.items())
    for p in PERCENTILES:
        name = "median_days" if p == 50 else f"p{p}_days"
        result[name] = None
        if n:
            rank = -(-p * n // 100)  # ⌈p·n/100⌉ in integers: no float rounding at exact ranks
            seen = 0
            for days, count in ordered:
                seen += count
                if seen >= rank:
                    result[name] = days
                    break
    histogram = [0] * len(BIN_EDGES)
    for days, count in ordered:
        histogram[max(i for i, edge in enumerate(BIN_EDGES) if days >= edge)] += count
    result["histogram"] = histogram
    return result


def _count_rows(inner: QuerySet, groups: Sequence[tuple[str, str]]) -> list[tuple[int, Any, Any, int]]:
    """Rows (group index, key, days, count) from `inner`, one query: for each (key column, days column) of
    `groups`, the rows of `inner` counted per key and days value.

    Django cannot GROUP BY over window functions or over aggregated rows, so the ORM builds the inner query
    (filters, joins, window, per-customer aggregates) and a small SQL shell, valid on both databases, counts it.
    """
    connection = connections[inner.db]
    quote = connection.ops.quote_name
    sql, params = inner.query.get_compiler(connection=connection).as_sql()
    # Only quoted column names and integers are put into the text; every value stays a parameter of `inner`.
    arms = [
        f"SELECT {index} AS grp, {quote(key) if key else 'NULL'} AS k, {quote(days)} AS d, COUNT(*) AS n "  # noqa: S608
        f"FROM t GROUP BY {quote(key) + ', ' if key else ''}{quote(days)}"
        for index, (key, days) in enumerate(groups)
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH t AS ({sql}) " + " UNION ALL ".join(arms), params)
        return [(grp, key, days, n) for grp, key, days, n in cursor.fetchall()]


def _as_counts(rows: Iterable[tuple[Any, int]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for days, n in rows:
        counts[int(days)] = counts.get(int(days), 0) + n
    return counts


def time_in_stage_compute(*, model: LifecycleModel, filters: MetricFilters) -> TimeInStageResult:
    """How long customers stay in each stage, and how long they take from one funnel step to the next. 3 queries.

    Per stage (every stage, funnel order): completed stays (left by as_of), ongoing stays, and the median, p75,
    p90 and histogram of the completed stays' whole days. Per pair of consecutive funnel steps: the customers
    who reached both by as_of and the statistics of the whole days from first entering step i (or a later step)
    to first entering step i + 1 (or a later step) — the same moments the funnel counts with; the funnel's
    conversion window does not apply here.

    Result: TimeInStageResult; statistics are null without stays.
    """
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk"))
    funnel = [stage for stage in stages if stage.kind == StageKind.FUNNEL]

    # A stay ends at the customer's next transition by as_of (LEAD over the log up to as_of): NULL days = ongoing.
    next_at = Window(Lead("at"), partition_by=[F("customer")], order_by=[F("at").asc(), F("pk").asc()])
    stays = (
        transition_log(model=model, filters=filters)
        .order_by()
        .annotate(stay_stage=F("to_stage"), stay_days=_whole_days(F("at"), next_at))
        .values("stay_stage", "stay_days")
    )
    by_stage: dict[int, dict[int, int]] = {stage.pk: {} for stage in stages}
    ongoing: dict[int, int] = {stage.pk: 0 for stage in stages}
    for _, stage_id, days, n in _count_rows(stays, [("stay_stage", "stay_days")]):
        if days is None:
            ongoing[stage_id] += n
        else:
            by_stage[stage_id][int(days)] = by_stage[stage_id].get(int(days), 0) + n

    per_step: dict[int, dict[int, int]] = {i: {} for i in range(len(funnel) - 1)}
    if len(funnel) > 1:
        gaps = {f"days_{i}": _whole_days(F(f"first_{i}"), F(f"first_{i + 1}")) for i in range(len(funnel) - 1)}
        firsts = first_entries(model=model, filters=filters, stages=funnel).annotate(**gaps)
        rows = _count_rows(firsts, [("", name) for name in gaps])
        for i in per_step:
            per_step[i] = _as_counts((days, n) for grp, _, days, n in rows if grp == i and days is not None)

    stage_rows: list[StageStays] = []
    for stage in stages:
        statistics = day_statistics(by_stage[stage.pk])
        stage_rows.append(
            {
                "stage": stage.key,
                "name": stage.name_en,
                "name_de": stage.name_de,
                "kind": stage.kind,
                "position": stage.position,
                "completed": statistics.pop("count"),
                "ongoing": ongoing[stage.pk],
                **statistics,
            }
        )
    conversions: list[StepConversion] = []
    for i, counts in per_step.items():
        statistics = day_statistics(counts)
        conversions.append(
            {"from_stage": funnel[i].key, "to_stage": funnel[i + 1].key, "converted": statistics.pop("count")}
            | statistics
        )
    return {
        "model": model.key,
        "as_of": filters.as_of.isoformat(),
        "filters": filters.as_json(),
        "percentile_method": "nearest-rank over whole days",
        "bins": bins(),
        "stages": stage_rows,
        "conversions": conversions,
    }
