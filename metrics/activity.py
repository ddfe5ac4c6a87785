"""Activity lifecycle of buyers per week or month (SPEC §4), the shape product-analytics tools chart.

Per period (ISO week from Monday, or calendar month; UTC), from completed orders up to as_of:
- new: first completed order in the period;
- returning: ordered in the period and in the previous one;
- resurrecting: ordered in the period, not in the previous one, but in some period before;
- dormant: ordered in the previous period but not in this one — reported as a negative count, as PostHog's
  lifecycle chart does, so that the bars of a period stack to "gained minus lost".

Periods are integers (month: `year * 12 + month - 1`; week: whole weeks since Monday 1969-12-29), so "the
previous period" is `period - 1` in SQL. One query: orders → one row per (customer, period) → LAG/LEAD of the
period over each customer → GROUP BY (period, category).
"""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from django.db.models import Exists, IntegerField, OuterRef, QuerySet
from django.db.models.expressions import Func

from clm.base.days import day_start
from lifecycle.models import Customer, Order, OrderStatus
from metrics.cohorts import (
    completed_orders,
    fetch_all,
    month_index,
    month_index_expression,
    month_label,
    month_parse,
    month_start,
)
from metrics.filters import MetricFilters

INTERVALS = ("week", "month")
CATEGORIES = ("new", "returning", "resurrecting", "dormant")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# Monday 1969-12-29 00:00 UTC is 3 days before the Unix epoch (a Thursday): week 0 starts there.
_WEEK_ZERO = datetime(1969, 12, 29, tzinfo=UTC)
_SECONDS_TO_WEEK_ZERO = 3 * 86400
_SECONDS_PER_WEEK = 7 * 86400


class ActivityPeriod(TypedDict):
    period: str  # week: its Monday YYYY-MM-DD; month: YYYY-MM
    start: str
    new: int
    returning: int
    resurrecting: int
    dormant: int  # negative
    buyers: int
    quick_ratio: float | None


class ActivityResult(TypedDict):
    """New, returning, resurrecting and dormant buyers per week or month (activity_compute)."""

    as_of: str
    interval: str
    periods: list[ActivityPeriod]


class WeekIndex(Func):
    """Whole weeks (Monday to Sunday, UTC) from week 0 to a timestamp, as an integer."""

    output_field = IntegerField()
    arity = 1

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"CAST(FLOOR((EXTRACT(EPOCH FROM {sql}) + {_SECONDS_TO_WEEK_ZERO}) / {_SECONDS_PER_WEEK}) AS integer)",
            params,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        # Django stores aware datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]". The fraction is cut off first:
        # strftime('%s') rounds to milliseconds, which would move 23:59:59.9999 on a Sunday into the next week.
        # Integer division truncates, which is the floor for every moment after week 0.
        sql, params = compiler.compile(self.source_expressions[0])
        seconds = f"CAST(strftime('%%s', substr({sql}, 1, 19)) AS integer)"
        return f"(({seconds} + {_SECONDS_TO_WEEK_ZERO}) / {_SECONDS_PER_WEEK})", params


def week_index(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _WEEK_ZERO) // timedelta(weeks=1)


def week_start(index: int) -> datetime:
    return _WEEK_ZERO + timedelta(weeks=index)


def _period_index(interval: str, moment: datetime) -> int:
    return week_index(moment) if interval == "week" else month_index(moment)


def _period_start(interval: str, index: int) -> datetime:
    return week_start(index) if interval == "week" else month_start(index)


def _period_label(interval: str, index: int) -> str:
    return week_start(index).date().isoformat() if interval == "week" else month_label(index)


def period_parse(interval: str, label: str) -> int:
    """A period label as in the result (week: its Monday YYYY-MM-DD; month: YYYY-MM) → index; ValueError else."""
    if interval == "week":
        try:
            # fromisoformat alone would also take "20240101" and week dates; labels are always YYYY-MM-DD
            if not isinstance(label, str) or not _DAY.fullmatch(label):
                raise ValueError(label)
            day = date.fromisoformat(label)
        except ValueError as exc:
            raise ValueError(f"{label!r} is not a day (YYYY-MM-DD).") from exc
        if day.weekday() != 0:
            raise ValueError(f"{label} is not a Monday: weeks are named by their Monday.")
        return week_index(day_start(day))
    return month_parse(label)


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}.")


def _activity_rows(filters: MetricFilters, interval: str) -> list[tuple[int, str, int, int]]:
    """(period, category of the customers active in it, 1 if they are dormant in the next period, count)."""
    period = WeekIndex("placed_at") if interval == "week" else month_index_expression()
    per_customer_period = completed_orders(filters).annotate(period=period).values("customer_id", "period").distinct()
    inner, params = per_customer_period.query.sql_with_params()
    sql = f"""
        SELECT period,
               CASE WHEN previous IS NULL THEN 'new'
                    WHEN previous = period - 1 THEN 'returning'
                    ELSE 'resurrecting' END AS category,
               CASE WHEN following IS NULL OR following > period + 1 THEN 1 ELSE 0 END AS lapses,
               COUNT(*)
        FROM (
            SELECT customer_id, period,
                   LAG(period) OVER (PARTITION BY customer_id ORDER BY period) AS previous,
                   LEAD(period) OVER (PARTITION BY customer_id ORDER BY period) AS following
            FROM ({inner}) per_customer_period
        ) neighbours
        GROUP BY period,
                 CASE WHEN previous IS NULL THEN 'new'
                      WHEN previous = period - 1 THEN 'returning'
                      ELSE 'resurrecting' END,
                 CASE WHEN following IS NULL OR following > period + 1 THEN 1 ELSE 0 END
    """  # noqa: S608 - the inner query is compiled by the ORM with its parameters kept separate
    return [(int(p), category, int(lapses), int(count)) for p, category, lapses, count in fetch_all(sql, params)]


def activity_compute(
    *, filters: MetricFilters, interval: str = "week", start: datetime | None = None
) -> ActivityResult:
    """New, returning, resurrecting and dormant buyers per period up to as_of's period: one query.

    Periods run from `start`'s period (default: the first period with a completed order) to the period holding
    as_of (which may be partial); periods without activity are listed with zeros. Categories use the whole
    history before `start`. Dormant counts are negative; `buyers` = new + returning + resurrecting;
    `quick_ratio` = (new + resurrecting) / |dormant| (None without dormant buyers).

    Result: ActivityResult.
    """
    _check_interval(interval)
    last = _period_index(interval, filters.as_of)
    counts: dict[int, dict[str, int]] = {}

    def cell(index: int) -> dict[str, int]:
        return counts.setdefault(index, dict.fromkeys(CATEGORIES, 0))

    for period, category, lapses, count in _activity_rows(filters, interval):
        cell(period)[category] += count
        if lapses and period + 1 <= last:
            cell(period + 1)["dormant"] -= count
    first = _period_index(interval, start) if start is not None else min(counts, default=last + 1)
    periods: list[ActivityPeriod] = []
    for index in range(first, last + 1):
        row = counts.get(index) or dict.fromkeys(CATEGORIES, 0)
        gained = row["new"] + row["resurrecting"]
        periods.append(
            {
                "period": _period_label(interval, index),
                "start": _period_start(interval, index).isoformat(),
                **row,
                "buyers": row["new"] + row["returning"] + row["resurrecting"],
                "quick_ratio": round(gained / -row["dormant"], 4) if row["dormant"] else None,
            }
        )
    return {"as_of": filters.as_of.isoformat(), "interval": interval, "periods": periods}


def activity_customers(*, filters: MetricFilters, interval: str, period: str, category: str) -> QuerySet[Customer]:
    """The customers behind one activity count (for dormant: those counted negatively). ValueError on an unknown
    interval or category, a malformed period label, or a period after as_of's.
    """
    _check_interval(interval)
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, not {category!r}.")
    index = period_parse(interval, period)
    if index > _period_index(interval, filters.as_of):
        raise ValueError(f"{period} is after as_of ({filters.as_of.date().isoformat()}).")
    previous_start, this_start, next_start = (_period_start(interval, index + offset) for offset in (-1, 0, 1))
    orders = Order.objects.filter(customer=OuterRef("pk"), status=OrderStatus.COMPLETED, placed_at__lte=filters.as_of)
    in_period = Exists(orders.filter(placed_at__gte=this_start, placed_at__lt=next_start))
    in_previous = Exists(orders.filter(placed_at__gte=previous_start, placed_at__lt=this_start))
    before_previous = Exists(orders.filter(placed_at__lt=previous_start))
    customers = filters.customers()
    if category == "new":
        return customers.filter(in_period, ~in_previous, ~before_previous)
    if category == "returning":
        return customers.filter(in_period, in_previous)
    if category == "resurrecting":
        return customers.filter(in_period, ~in_previous, before_previous)
    return customers.filter(~in_period, in_previous)
