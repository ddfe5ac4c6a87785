"""Cohort retention and historical CLV from completed orders (SPEC §4 "Cohort retention", "Value").

A customer's cohort is the calendar month (UTC) of their first completed order up to `as_of`. Months are
counted as integers (`year * 12 + month - 1`) so "k months after" is plain subtraction in SQL on both
PostgreSQL and SQLite. Every compute function here runs one aggregate query whatever the number of
customers; Python only folds the small (channel × cohort × month) result.
"""

import re
from collections import defaultdict
from datetime import UTC, datetime, tzinfo
from typing import Any, TypedDict

from django.db import connection
from django.db.models import Count, Exists, F, IntegerField, Max, Min, OuterRef, QuerySet, Sum
from django.db.models.functions import Cast, ExtractMonth, ExtractYear

from lifecycle.models import Customer, Order, OrderStatus
from metrics.filters import MetricFilters

MEASURES = ("share", "revenue")
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class RetentionRow(TypedDict):
    """Per k = 0, 1, …: the value (share active, or cumulative revenue per customer) and the customers active;
    null where not observable yet."""

    size: int
    values: list[float | None]
    active: list[int | None]


class CohortRetention(RetentionRow):
    cohort: str  # YYYY-MM


class ChannelRetention(RetentionRow):
    channel: str | None  # an acquisition channel's key; null: unknown


class CohortsResult(TypedDict):
    """Cohort retention by month of first order (cohort_retention_compute)."""

    as_of: str
    measure: str
    months: int
    cohorts: list[CohortRetention]
    average: RetentionRow  # weighted by size over the cohorts observable at each k
    by_channel: list[ChannelRetention]


class ValueRow(TypedDict):
    customers: int
    revenue: float
    revenue_per_customer: float | None
    orders_per_customer: float | None
    predicted_clv_365d: float | None


class CohortValue(ValueRow):
    cohort: str  # YYYY-MM


class ChannelValue(ValueRow):
    channel: str | None


class ClvHistoricalResult(TypedDict):
    """Completed-order revenue per buyer by cohort month and acquisition channel (historical_clv_compute)."""

    as_of: str
    by_cohort: list[CohortValue]
    by_channel: list[ChannelValue]
    totals: ValueRow


# --- months as integers ----------------------------------------------------------------------------


def month_index_expression(field: str = "placed_at", *, zone: tzinfo | None = UTC) -> Cast:
    """`year * 12 + month - 1` of a timestamp (in UTC) as an integer: consecutive months differ by 1.

    Pass zone=None for a DateField (Django refuses a time zone there: a day has none to convert from).
    """
    return Cast(
        ExtractYear(field, tzinfo=zone) * 12 + ExtractMonth(field, tzinfo=zone) - 1, output_field=IntegerField()
    )


def month_index(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return moment.year * 12 + moment.month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_parse(label: str) -> int:
    """ "YYYY-MM" → month index; ValueError on anything else."""
    match = _MONTH.fullmatch(label) if isinstance(label, str) else None
    if match is None:
        raise ValueError(f"{label!r} is not a month (YYYY-MM).")
    return int(match[1]) * 12 + int(match[2]) - 1


# --- shared order queries ----------------------------------------------------------------------------


def completed_orders(filters: MetricFilters) -> QuerySet[Order]:
    """Completed orders up to as_of of the customers the filters select (unordered, for aggregation)."""
    return Order.objects.filter(
        status=OrderStatus.COMPLETED,
        placed_at__lte=filters.as_of,
        customer__in=filters.customers().values("pk"),
    ).order_by()


def fetch_all(sql: str, params: Any) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def to_float(value: Any) -> float:
    """SUM over money is Decimal on PostgreSQL and float on SQLite; the result is a float either way."""
    return float(value or 0)


def round_money(value: float) -> float:
    return round(value, 2)


def ratio(numerator: float, denominator: float, digits: int = 4) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def buyer_groups(filters: MetricFilters) -> list[dict[str, Any]]:
    """Buyers up to as_of grouped by (acquisition channel key, cohort month index): one query.

    Each row: channel (key or None), cohort (month index), customers, revenue, orders, and of the customers with
    a stored CLV prediction (CustomerValue) their count and summed expected_spend_365d. The inner query has one
    row per customer; the outer GROUP BY folds it in the database, so only the small grouped result comes back.
    """
    per_customer = (
        completed_orders(filters)
        .values("customer_id")
        .annotate(
            # one value per customer: MAX only carries it through the per-customer GROUP BY
            channel_key=Max(F("customer__acquisition_channel__key")),
            cohort_index=Min(month_index_expression()),
            revenue=Sum("amount"),
            order_count=Count("pk"),
            predicted=Max("customer__value__expected_spend_365d"),
        )
    )
    inner, params = per_customer.query.sql_with_params()
    sql = f"""
        SELECT channel_key, cohort_index, COUNT(*), SUM(revenue), SUM(order_count), COUNT(predicted), SUM(predicted)
        FROM ({inner}) per_customer
        GROUP BY channel_key, cohort_index
    """  # noqa: S608 - the inner query is compiled by the ORM with its parameters kept separate
    return [
        {
            "channel": channel,
            "cohort": int(cohort),
            "customers": customers,
            "revenue": to_float(revenue),
            "orders": int(orders),
            "predicted_customers": predicted_customers,
            "predicted_sum": to_float(predicted_sum),
        }
        for channel, cohort, customers, revenue, orders, predicted_customers, predicted_sum in fetch_all(sql, params)
    ]


# --- cohort retention --------------------------------------------------------------------------------


def _retention_rows(filters: MetricFilters) -> list[tuple[str | None, int, int, int, float]]:
    """(channel, cohort, month, customers with an order in that month, their revenue in it): one query.

    Inner: one row per (customer, month with a completed order); the cohort is the minimum month over the
    customer's rows (a window function), so no correlated subquery per order.
    """
    per_customer_month = (
        completed_orders(filters)
        .annotate(month_index=month_index_expression())
        .values("customer_id", "month_index", channel_key=F("customer__acquisition_channel__key"))
        .annotate(revenue=Sum("amount"))
    )
    inner, params = per_customer_month.query.sql_with_params()
    sql = f"""
        SELECT channel_key, cohort_index, month_index, COUNT(*), SUM(revenue)
        FROM (
            SELECT channel_key, month_index, revenue,
                   MIN(month_index) OVER (PARTITION BY customer_id) AS cohort_index
            FROM ({inner}) per_customer_month
        ) with_cohort
        GROUP BY channel_key, cohort_index, month_index
    """  # noqa: S608 - the inner query is compiled by the ORM with its parameters kept separate
    return [
        (channel, int(cohort), int(month), int(customers), to_float(revenue))
        for channel, cohort, month, customers, revenue in fetch_all(sql, params)
    ]


def _retention_row(
    *, size: int, active: list[int], revenue: list[float], observable: list[bool], measure: str
) -> RetentionRow:
    """One matrix row: per k the share active (or cumulative revenue per customer); None when not observable."""
    values: list[float | None] = []
    cumulative = 0.0
    for k, seen in enumerate(observable):
        cumulative += revenue[k]
        if not seen or not size:
            values.append(None)
        elif measure == "share":
            values.append(round(active[k] / size, 4))
        else:
            values.append(round_money(cumulative / size))
    return {
        "size": size,
        "values": values,
        "active": [count if seen else None for count, seen in zip(active, observable, strict=True)],
    }


def _weighted_row(cohorts: dict[int, dict[str, Any]], *, as_of_index: int, months: int, measure: str) -> RetentionRow:
    """The size-weighted average over cohorts: per k only the cohorts that can already be observed at k count."""
    values: list[float | None] = []
    active_total: list[int | None] = []
    for k in range(months):
        seen = [cell for cohort, cell in cohorts.items() if cohort + k <= as_of_index]
        size = sum(cell["size"] for cell in seen)
        if not size:
            values.append(None)
            active_total.append(None)
            continue
        active = sum(cell["active"][k] for cell in seen)
        active_total.append(active)
        if measure == "share":
            values.append(round(active / size, 4))
        else:
            values.append(round_money(sum(sum(cell["revenue"][: k + 1]) for cell in seen) / size))
    return {"size": sum(cell["size"] for cell in cohorts.values()), "values": values, "active": active_total}


def cohort_retention_compute(*, filters: MetricFilters, measure: str = "share", months: int = 24) -> CohortsResult:
    """The cohort retention matrix as of `filters.as_of`: one query.

    Cohorts are months of the customers' first completed order. For k = 0..months-1:
    - `share`: customers of the cohort with a completed order in calendar month cohort + k, divided by its size;
    - `revenue`: completed-order revenue of the cohort from its month 0 through month k, per cohort customer.
    Cells after as_of's month are None (not observable yet). `average` weights cohorts by size over the cohorts
    observable at each k; `by_channel` is that average per acquisition channel (key, None = unknown).

    Result: CohortsResult; `active` holds the customer counts behind each cell (what cohort_customers lists).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}.")
    if months < 1:
        raise ValueError("months must be at least 1.")
    as_of_index = month_index(filters.as_of)

    # (channel, cohort) → {"size", "active"[k], "revenue"[k]}; size = customers active in month 0
    cells: dict[tuple[str | None, int], dict[str, Any]] = defaultdict(
        lambda: {"size": 0, "active": [0] * months, "revenue": [0.0] * months}
    )
    for channel, cohort, month, customers, revenue in _retention_rows(filters):
        k = month - cohort
        if k >= months:
            continue
        cell = cells[(channel, cohort)]
        cell["active"][k] += customers
        cell["revenue"][k] += revenue
        if k == 0:
            cell["size"] += customers

    def fold(keys: list[tuple[str | None, int]]) -> dict[int, dict[str, Any]]:
        """Sum the channel parts of each cohort."""
        folded: dict[int, dict[str, Any]] = defaultdict(
            lambda: {"size": 0, "active": [0] * months, "revenue": [0.0] * months}
        )
        for key in keys:
            target, source = folded[key[1]], cells[key]
            target["size"] += source["size"]
            target["active"] = [a + b for a, b in zip(target["active"], source["active"], strict=True)]
            target["revenue"] = [a + b for a, b in zip(target["revenue"], source["revenue"], strict=True)]
        return folded

    cohorts = fold(list(cells))
    rows = []
    for cohort in sorted(cohorts):
        observable = [cohort + k <= as_of_index for k in range(months)]
        cell = cohorts[cohort]
        rows.append(
            {
                "cohort": month_label(cohort),
                **_retention_row(
                    size=cell["size"],
                    active=cell["active"],
                    revenue=cell["revenue"],
                    observable=observable,
                    measure=measure,
                ),
            }
        )
    channels = sorted({channel for channel, _ in cells}, key=lambda key: (key is None, key or ""))
    by_channel = [
        {
            "channel": channel,
            **_weighted_row(
                fold([key for key in cells if key[0] == channel]),
                as_of_index=as_of_index,
                months=months,
                measure=measure,
            ),
        }
        for channel in channels
    ]
    return {
        "as_of": filters.as_of.isoformat(),
        "measure": measure,
        "months": months,
        "cohorts": rows,
        "average": _weighted_row(cohorts, as_of_index=as_of_index, months=months, measure=measure),
        "by_channel": by_channel,
    }


def cohort_customers(*, filters: MetricFilters, cohort: str, month_offset: int) -> QuerySet[Customer]:
    """The customers behind a cohort cell: first completed order in month `cohort` ("YYYY-MM") and a completed
    order in calendar month cohort + `month_offset`, both up to as_of. Its count is the cell's `active` count.
    """
    if month_offset < 0:
        raise ValueError("month_offset must be 0 or more.")
    first = month_parse(cohort)
    target = first + month_offset
    orders = Order.objects.filter(customer=OuterRef("pk"), status=OrderStatus.COMPLETED, placed_at__lte=filters.as_of)
    return filters.customers().filter(
        ~Exists(orders.filter(placed_at__lt=month_start(first))),
        Exists(orders.filter(placed_at__gte=month_start(first), placed_at__lt=month_start(first + 1))),
        Exists(orders.filter(placed_at__gte=month_start(target), placed_at__lt=month_start(target + 1))),
    )


# --- historical CLV ----------------------------------------------------------------------------------


def _value_row(groups: list[dict[str, Any]]) -> ValueRow:
    customers = sum(group["customers"] for group in groups)
    revenue = sum(group["revenue"] for group in groups)
    orders = sum(group["orders"] for group in groups)
    predicted_customers = sum(group["predicted_customers"] for group in groups)
    predicted_sum = sum(group["predicted_sum"] for group in groups)
    return {
        "customers": customers,
        "revenue": round_money(revenue),
        "revenue_per_customer": ratio(revenue, customers, 2),
        "orders_per_customer": ratio(orders, customers, 4),
        "predicted_clv_365d": ratio(predicted_sum, predicted_customers, 2),
    }


def historical_clv_compute(*, filters: MetricFilters) -> ClvHistoricalResult:
    """Historical CLV: completed-order revenue per buyer up to as_of, by cohort month and by acquisition channel.

    One query. A buyer is a selected customer with at least one completed order up to as_of. Per group: buyers,
    revenue, revenue per buyer, orders per buyer, and the mean stored 365-day spend prediction
    (CustomerValue.expected_spend_365d) over the group's buyers that have one (None when none has).

    Result: ClvHistoricalResult, with the fields above in each group.
    """
    groups = buyer_groups(filters)
    by_cohort: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_channel: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for group in groups:
        by_cohort[group["cohort"]].append(group)
        by_channel[group["channel"]].append(group)
    return {
        "as_of": filters.as_of.isoformat(),
        "by_cohort": [{"cohort": month_label(cohort), **_value_row(by_cohort[cohort])} for cohort in sorted(by_cohort)],
        "by_channel": [
            {"channel": channel, **_value_row(by_channel[channel])}
            for channel in sorted(by_channel, key=lambda key: (key is None, key or ""))
        ],
        "totals": _value_row(groups),
    }
