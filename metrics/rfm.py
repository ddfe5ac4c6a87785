"""RFM (SPEC §4): recency, frequency and monetary scores 1–5 by quintile among buyers, the classic segments, and
how customers moved between segments over a period.

**Breakpoints.** Among the *buyers* as of a moment (customers with at least one completed order at or before
it), each dimension has 4 ascending edges e1 ≤ e2 ≤ e3 ≤ e4 at the 20/40/60/80th percentiles by the
nearest-rank rule: with n buyers sorted ascending by the value, e_k is the value at 1-based rank ⌈k·n/5⌉.
They are read in SQL: the per-buyer aggregate numbered with ROW_NUMBER() in value order, filtered to those ranks
(equal values may be numbered either way round, but every one of them has the same value, so the edge is the
same). Recency is in whole days since the last completed order (smaller is better), frequency is the number of
completed orders, monetary the sum of their amounts.

**Scores.** A score counts the edges a value exceeds, so equal values always get the same score:
frequency and monetary = 1 + #{k : value > e_k}; recency = 5 − #{k : days > e_k} (5 = most recent). Each is one
CASE per dimension over the lifecycle features (lifecycle.features) and NULL for non-buyers, so the same
expression serves the rule features `r_score`, `f_score`, `m_score`, the segment counts and the drill-downs.

**Segments** come from Putler's R × FM grid (see SEGMENT_MAP).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypedDict

from django.db import connections
from django.db.models import (
    Case,
    CharField,
    Count,
    Expression,
    F,
    IntegerField,
    Max,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, RowNumber
from django.db.models.lookups import GreaterThan, LessThan, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_noop

from clm.base.sql import grouped_counts
from lifecycle.features import FEATURES, Feature, FeatureType, feature_register
from lifecycle.models import Customer, Order, OrderStatus
from metrics.filters import FiltersJson, MetricFilters
from metrics.models import MetricsRun, RfmBreakpoints

DIMENSIONS: tuple[str, ...] = ("recency", "frequency", "monetary")
SCORES = range(1, 6)
NONE_LABEL = "(none)"  # movement: not a buyer at that moment

# Amounts have 2 decimals, so two different totals differ by at least 0.01. SQLite sums decimals as floating point
# (59.97 may come back as 59.970000000000006); comparing against edge + half a cent keeps ties tied on both
# databases without changing any result on PostgreSQL, which sums exactly.
MONEY_SLACK = Decimal("0.005")


# --- results -----------------------------------------------------------------------------------------


class BreakpointsJson(TypedDict):
    """The 4 ascending quintile edges per dimension among all buyers as of a moment (empty without buyers)."""

    as_of: str
    buyers: int
    recency_days: list[int]
    frequency: list[int]
    monetary: list[float]


class RfmSegmentCount(TypedDict):
    key: str
    name: str
    customers: int
    share: float | None  # of the selected buyers


class RfmScoreCount(TypedDict):
    score: int
    customers: int


class RfmScores(TypedDict):
    recency: list[RfmScoreCount]  # scores 1–5
    frequency: list[RfmScoreCount]
    monetary: list[RfmScoreCount]


class RfmCell(TypedDict):
    r: int
    f: int
    m: int
    segment: str
    customers: int


# "from" is a Python keyword: declared in the functional syntax.
SegmentMove = TypedDict("SegmentMove", {"from": str, "to": str, "customers": int})


class RfmMovement(TypedDict):
    """The selected customers by segment at `start` (from) and as of the day (to); "(none)": not a buyer then."""

    start: str
    breakpoints: BreakpointsJson
    none_label: str
    labels: list[str]
    cells: list[SegmentMove]  # non-empty
    stayed: int
    moved: int
    new_buyers: int


class RfmResult(TypedDict):
    """RFM scores and segments of the selected customers, and with a start their movement (rfm_compute)."""

    as_of: str
    filters: FiltersJson
    customers: int  # selected
    buyers: int  # selected buyers
    breakpoints: BreakpointsJson
    segments: list[RfmSegmentCount]  # every segment, SEGMENT_MAP order
    scores: RfmScores
    cells: list[RfmCell]  # non-empty (R, F, M) combinations, best first
    movement: RfmMovement | None


# --- segments ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A rectangle of Putler's R × FM chart: lo < R ≤ hi and lo < FM ≤ hi, where FM = (F + M) / 2."""

    key: str
    name: str
    r: tuple[int, int]
    fm: tuple[int, int]

    def contains(self, r: int, f: int, m: int) -> bool:
        # FM is compared doubled (F + M against 2·bound) so the SQL stays in integers.
        return self.r[0] < r <= self.r[1] and 2 * self.fm[0] < f + m <= 2 * self.fm[1]


# Anish Nair, "RFM Analysis For Successful Customer Segmentation", Putler (https://www.putler.com/rfm-analysis/):
# 11 segments on a chart of R (x) against FM, the average of F and M (y), both axes 0–5. Each row is the rectangle
# the article's table gives; read as (low, high] intervals they tile the 5 × 5 grid without a gap. Where two
# rectangles overlap the earlier row wins: champions inside loyal customers, cannot lose them inside at risk,
# hibernating inside lost. Order here = evaluation order of the CASE. Names are marked for translation (pages).
SEGMENT_MAP: tuple[Segment, ...] = (
    Segment("champions", gettext_noop("Champions"), (4, 5), (4, 5)),
    Segment("loyal_customers", gettext_noop("Loyal customers"), (2, 5), (3, 5)),
    Segment("potential_loyalists", gettext_noop("Potential loyalists"), (3, 5), (1, 3)),
    Segment("new_customers", gettext_noop("New customers"), (4, 5), (0, 1)),
    Segment("promising", gettext_noop("Promising"), (3, 4), (0, 1)),
    Segment("need_attention", gettext_noop("Need attention"), (2, 3), (2, 3)),
    Segment("about_to_sleep", gettext_noop("About to sleep"), (2, 3), (0, 2)),
    Segment("cannot_lose_them", gettext_noop("Cannot lose them"), (0, 1), (4, 5)),
    Segment("at_risk", gettext_noop("At risk"), (0, 2), (2, 5)),
    Segment("hibernating", gettext_noop("Hibernating"), (1, 2), (1, 2)),
    Segment("lost", gettext_noop("Lost"), (0, 2), (0, 2)),
)
SEGMENTS: dict[str, str] = {segment.key: segment.name for segment in SEGMENT_MAP}


def segment_of(*, r: int, f: int, m: int) -> str:
    """The segment of one (R, F, M) score triple: the first row of SEGMENT_MAP that contains it."""
    for segment in SEGMENT_MAP:
        if segment.contains(r, f, m):
            return segment.key
    raise ValueError(f"scores out of range: R={r} F={f} M={m}")  # unreachable for scores 1–5: the grid is tiled


# --- breakpoints -----------------------------------------------------------------------------------


class Breakpoints(Protocol):
    """What scoring needs: a stored RfmBreakpoints row and a freshly computed RfmBreakpointsData both qualify."""

    as_of: datetime
    buyers: int
    recency_days: Sequence[int]
    frequency: Sequence[int]
    monetary: Sequence[float]


@dataclass(frozen=True)
class RfmBreakpointsData:
    """4 ascending edges per dimension (empty lists when there was no buyer)."""

    as_of: datetime
    buyers: int
    recency_days: list[int]
    frequency: list[int]
    monetary: list[float]

    def as_json(self) -> BreakpointsJson:
        return breakpoints_json(self)


def breakpoints_json(breakpoints: Breakpoints) -> BreakpointsJson:
    """Stored or computed breakpoints as plain JSON."""
    return {
        "as_of": breakpoints.as_of.isoformat(),
        "buyers": breakpoints.buyers,
        "recency_days": list(breakpoints.recency_days),
        "frequency": list(breakpoints.frequency),
        "monetary": list(breakpoints.monetary),
    }


def _buyer_values(as_of: datetime) -> QuerySet:
    """One row per buyer as of `as_of`: last completed order, completed orders, their total."""
    return (
        Order.objects.filter(status=OrderStatus.COMPLETED, placed_at__lte=as_of)
        .order_by()
        .values("customer")
        .annotate(last_order_at=Max("placed_at"), orders=Count("pk"), spent=Sum("amount"))
    )


def quintile_ranks(buyers: int) -> list[int]:
    """The 1-based ranks of the 20/40/60/80th percentiles among `buyers` values (nearest rank: ⌈k·n/5⌉)."""
    return [-(-k * buyers // 5) for k in range(1, 5)]


def rfm_breakpoints_compute(*, as_of: datetime) -> RfmBreakpointsData:
    """The quintile edges among buyers as of `as_of` (module docstring): 4 queries whatever the number of buyers.

    Recency edges are whole days: the k-th smallest recency is the whole days since the k-th *latest* last order,
    so the ranks are read in descending order of the timestamp and converted in Python (floor of the difference).
    """
    buyers = _buyer_values(as_of).count()
    if not buyers:
        return RfmBreakpointsData(as_of=as_of, buyers=0, recency_days=[], frequency=[], monetary=[])
    ranks = quintile_ranks(buyers)

    def at_ranks(field: str, descending: bool = False) -> list[Any]:
        order = F(field).desc() if descending else F(field).asc()
        values = dict(
            _buyer_values(as_of)
            .annotate(rank=Window(RowNumber(), order_by=order))
            .filter(rank__in=set(ranks))
            .values_list("rank", field)
        )
        return [values[rank] for rank in ranks]

    return RfmBreakpointsData(
        as_of=as_of,
        buyers=buyers,
        recency_days=[(as_of - last).days for last in at_ranks("last_order_at", descending=True)],
        frequency=[int(orders) for orders in at_ranks("orders")],
        # Rounded to cents: the amounts have 2 decimals; SQLite may add floating-point noise to the sum.
        monetary=[round(float(spent), 2) for spent in at_ranks("spent")],
    )


def rfm_breakpoints_store(*, as_of: datetime, run: MetricsRun | None = None) -> RfmBreakpoints:
    """Compute the breakpoints as of `as_of` and save them as a new row (the rule features read the latest)."""
    data = rfm_breakpoints_compute(as_of=as_of)
    return RfmBreakpoints.objects.create(
        as_of=as_of,
        computed_at=timezone.now(),
        buyers=data.buyers,
        recency_days=data.recency_days,
        frequency=data.frequency,
        monetary=data.monetary,
        run=run,
    )


def rfm_breakpoints_latest() -> RfmBreakpoints | None:
    """The most recently computed breakpoints, or None before the first run."""
    return RfmBreakpoints.objects.order_by("-computed_at", "-pk").first()


# --- scores ----------------------------------------------------------------------------------------


EDGE_FIELDS = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary"}


def _edges(breakpoints: Breakpoints | None, dimension: str) -> list:
    return [] if breakpoints is None else list(getattr(breakpoints, EDGE_FIELDS[dimension]))


def rfm_score_expression(*, dimension: str, as_of: datetime, breakpoints: Breakpoints | None) -> Expression:
    """The 1–5 score of one dimension as of `as_of` over a Customer queryset; NULL for non-buyers (and for everyone
    without breakpoints, or with the empty breakpoints of a moment without buyers).

    Built on the registered order features (lifecycle.features: aggregates over the customer's orders), so it runs
    inside the rule compiler unchanged: recency on `days_since_last_order` (the last order's timestamp), frequency
    on `order_count`, monetary on `total_spent`; `order_count` tells buyers apart (a buyer may have spent 0).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"Unknown RFM dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}.")
    if len(_edges(breakpoints, dimension)) != 4:
        # Typed: PostgreSQL cannot add two untyped NULLs (the segment CASE sums F + M).
        return Cast(Value(None), output_field=IntegerField())
    feature = {"recency": "days_since_last_order", "frequency": "order_count", "monetary": "total_spent"}[dimension]
    score = _score_case(dimension, FEATURES[feature].expression(as_of), as_of, breakpoints)
    return Case(
        When(LessThan(FEATURES["order_count"].expression(as_of), 1), then=Value(None)),
        default=score,
        output_field=IntegerField(),
    )


def rfm_features_register() -> None:
    """Register the rule features r_score, f_score and m_score (called from the metrics app config).

    They score with the latest stored breakpoints (one small query when a model's rules are compiled), whatever
    moment the rules are evaluated as of: recency is counted back from that moment, frequency and monetary use the
    events up to it. Without stored breakpoints the features are NULL and match no condition.
    """
    descriptions = {
        "recency": gettext_noop(
            "RFM recency score 1–5 (5 = most recent order; quintiles of the latest breakpoints; null for non-buyers)"
        ),
        "frequency": gettext_noop("RFM frequency score 1–5 (5 = most completed orders; null for non-buyers)"),
        "monetary": gettext_noop("RFM monetary score 1–5 (5 = highest total spent; null for non-buyers)"),
    }
    for dimension, description in descriptions.items():

        def expression(as_of: datetime, dimension: str = dimension) -> Expression:
            return rfm_score_expression(dimension=dimension, as_of=as_of, breakpoints=rfm_breakpoints_latest())

        feature_register(Feature(f"{dimension[0]}_score", FeatureType.INTEGER, description, expression))


# --- segments, distribution, movement ------------------------------------------------------------------
#
# Counting and listing score every buyer at once: one GROUP BY over the orders gives each buyer's last order,
# order count and total, and CASE expressions over those aggregates give the scores and the segment. The rule
# features above score one customer at a time inside the classification query instead.


def _score_case(dimension: str, value: Expression, as_of: datetime, breakpoints: Breakpoints) -> Expression:
    """The score of one dimension from a buyer's aggregate (same edges and ties as rfm_score_expression)."""
    edges = _edges(breakpoints, dimension)
    if dimension == "recency":
        whens = [
            When(GreaterThan(value, as_of - timedelta(days=int(e) + 1)), then=Value(5 - k)) for k, e in enumerate(edges)
        ]
        return Case(*whens, default=Value(1), output_field=IntegerField())
    if dimension == "frequency":
        whens = [When(LessThanOrEqual(value, int(e)), then=Value(k + 1)) for k, e in enumerate(edges)]
    else:
        whens = [
            When(LessThanOrEqual(value, Decimal(str(e)) + MONEY_SLACK), then=Value(k + 1)) for k, e in enumerate(edges)
        ]
    return Case(*whens, default=Value(5), output_field=IntegerField())


def _segment_case() -> Expression:
    """SEGMENT_MAP as one CASE over the annotated scores rfm_r, rfm_f, rfm_m."""
    fm2 = F("rfm_f") + F("rfm_m")
    whens = [
        When(
            GreaterThan(F("rfm_r"), segment.r[0])
            & LessThanOrEqual(F("rfm_r"), segment.r[1])
            & GreaterThan(fm2, 2 * segment.fm[0])
            & LessThanOrEqual(fm2, 2 * segment.fm[1]),
            then=Value(segment.key),
        )
        for segment in SEGMENT_MAP
    ]
    return Case(*whens, default=Value(None), output_field=CharField())


def scored_buyers(*, filters: MetricFilters, as_of: datetime, breakpoints: Breakpoints) -> QuerySet:
    """One row per selected buyer as of `as_of` (`customer`, `rfm_r`, `rfm_f`, `rfm_m`, `rfm_segment`): one GROUP BY
    over the completed orders. Without edges (no buyer when they were computed) there is no row."""
    buyers = _buyer_values(as_of)
    if len(_edges(breakpoints, "recency")) != 4:
        # No edges: nobody had bought then. An impossible condition rather than .none(), which cannot be compiled
        # into the SQL of grouped_counts and segment_moves.
        buyers = buyers.filter(customer__isnull=True)
    if filters.filters_customers:
        buyers = buyers.filter(customer__in=filters.customers().values("pk"))
    return buyers.annotate(
        rfm_r=_score_case("recency", F("last_order_at"), as_of, breakpoints),
        rfm_f=_score_case("frequency", F("orders"), as_of, breakpoints),
        rfm_m=_score_case("monetary", F("spent"), as_of, breakpoints),
    ).annotate(rfm_segment=_segment_case())


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rfm_compute(
    *, filters: MetricFilters, start: datetime | None = None, breakpoints: Breakpoints | None = None
) -> RfmResult:
    """RFM of the customers the filters select, as of `filters.as_of`: 6 queries, 11 with `start`.

    Scores use breakpoints among *all* buyers as of then (computed unless `breakpoints` is passed), so a customer's
    scores do not depend on the filter; the filters only choose whom to count. With `start` (before as_of), the
    movement matrix counts the selected customers by their segment as of `start` (scored with breakpoints computed
    as of `start`) and as of as_of; "(none)" means not a buyer at that moment.

    Result: RfmResult.
    """
    as_of = filters.as_of
    if breakpoints is None:
        breakpoints = rfm_breakpoints_compute(as_of=as_of)
    scored = scored_buyers(filters=filters, as_of=as_of, breakpoints=breakpoints)
    rows = grouped_counts(scored, ["rfm_r", "rfm_f", "rfm_m", "rfm_segment"])
    buyers = 0
    by_segment = dict.fromkeys(SEGMENTS, 0)
    by_score: dict[str, dict[int, int]] = {dimension: dict.fromkeys(SCORES, 0) for dimension in DIMENSIONS}
    cells: list[RfmCell] = []
    for r, f, m, segment, n in rows:  # at most 125 (R, F, M) combinations
        buyers += n
        by_segment[segment] += n
        for dimension, score in zip(DIMENSIONS, (r, f, m), strict=True):
            by_score[dimension][score] += n
        cells.append({"r": r, "f": f, "m": m, "segment": segment, "customers": n})
    cells.sort(key=lambda cell: (-cell["r"], -cell["f"], -cell["m"]))

    return {
        "as_of": as_of.isoformat(),
        "filters": filters.as_json(),
        "customers": filters.customers().count(),
        "buyers": buyers,
        "breakpoints": breakpoints_json(breakpoints),
        "segments": [
            {"key": key, "name": name, "customers": by_segment[key], "share": _share(by_segment[key], buyers)}
            for key, name in SEGMENTS.items()
        ],
        "scores": {
            dimension: [{"score": score, "customers": n} for score, n in counts.items()]
            for dimension, counts in by_score.items()
        },
        "cells": cells,
        "movement": None if start is None else _movement(filters=filters, start=start, breakpoints=breakpoints),
    }


def _movement(*, filters: MetricFilters, start: datetime, breakpoints: Breakpoints) -> RfmMovement:
    """From × to segment counts between `start` and as_of (5 queries: breakpoints as of start, then one aggregate).

    Completed orders by `start` are still there at as_of, so every buyer at start is a buyer at as_of: the buyers
    at as_of, left-joined to their segment at start, are everyone the matrix counts.
    """
    if start >= filters.as_of:
        raise ValueError(f"start ({start.isoformat()}) must be before as_of ({filters.as_of.isoformat()}).")
    start_breakpoints = rfm_breakpoints_compute(as_of=start)
    then = scored_buyers(filters=filters, as_of=start, breakpoints=start_breakpoints).values("customer", "rfm_segment")
    now = scored_buyers(filters=filters, as_of=filters.as_of, breakpoints=breakpoints).values("customer", "rfm_segment")
    rows = segment_moves(then, now)
    order = {key: i for i, key in enumerate([*SEGMENTS, NONE_LABEL])}
    cells = sorted(
        ({"from": source or NONE_LABEL, "to": target, "customers": n} for source, target, n in rows),
        key=lambda cell: (order[cell["from"]], order[cell["to"]]),
    )
    return {
        "start": start.isoformat(),
        "breakpoints": start_breakpoints.as_json(),
        "none_label": NONE_LABEL,
        "labels": list(order),
        "cells": cells,
        "stayed": sum(c["customers"] for c in cells if c["from"] == c["to"]),
        "moved": sum(c["customers"] for c in cells if c["from"] != c["to"] and NONE_LABEL not in (c["from"], c["to"])),
        "new_buyers": sum(c["customers"] for c in cells if c["from"] == NONE_LABEL),
    }


def segment_moves(then: QuerySet, now: QuerySet) -> list[tuple[str | None, str, int]]:
    """(segment then or None, segment now, customers) from two scored_buyers querysets, in one query."""
    connection = connections[now.db]
    quote = connection.ops.quote_name
    then_sql, then_params = then.query.get_compiler(connection=connection).as_sql()
    now_sql, now_params = now.query.get_compiler(connection=connection).as_sql()
    segment, customer = quote("rfm_segment"), quote("customer")
    sql = (
        f"SELECT t.{segment}, n.{segment}, COUNT(*) FROM ({now_sql}) n "  # noqa: S608 - compiled SQL and quoted names
        f"LEFT JOIN ({then_sql}) t ON t.{customer} = n.{customer} GROUP BY t.{segment}, n.{segment}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*now_params, *then_params])
        return cursor.fetchall()


def rfm_customers(*, filters: MetricFilters, segment: str) -> QuerySet[Customer]:
    """The selected customers in `segment` as of `filters.as_of`, scored exactly as rfm_compute scores them, so the
    list's length equals the segment's count. Computes the breakpoints now (4 queries); the list is lazy (one query).

    Raises ValueError for an unknown segment key.
    """
    if segment not in SEGMENTS:
        raise ValueError(f"Unknown segment {segment!r}; known: {', '.join(SEGMENTS)}.")
    breakpoints = rfm_breakpoints_compute(as_of=filters.as_of)
    scored = scored_buyers(filters=filters, as_of=filters.as_of, breakpoints=breakpoints)
    return Customer.objects.filter(pk__in=scored.filter(rfm_segment=segment).values("customer"))
