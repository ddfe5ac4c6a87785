"""Customer acquisition cost per channel and month, and CLV:CAC per channel (SPEC §4 "Value").

Two queries: marketing spend grouped by (channel, month), and buyers grouped by (acquisition channel, month of
first completed order) with their revenue and stored predictions (metrics.cohorts.buyer_groups).
"""

from collections import defaultdict
from datetime import UTC
from typing import Any, TypedDict

from django.db.models import F, Q, Sum

from campaigns.models import MarketingSpend, SpendPeriod
from metrics.cohorts import buyer_groups, month_index_expression, month_label, ratio, round_money, to_float
from metrics.filters import MetricFilters


class CacMonth(TypedDict):
    month: str  # YYYY-MM
    spend: float
    new_customers: int
    cac: float | None


class CacChannel(TypedDict):
    channel: str
    spend: float
    new_customers: int
    cac: float | None
    historical_clv: float | None
    predicted_clv: float | None
    clv_cac: float | None
    predicted_clv_cac: float | None
    months: list[CacMonth]


class CacTotals(TypedDict):
    spend: float
    new_customers: int  # including those without an acquisition channel
    unattributed_new_customers: int
    cac: float | None  # blended: all spend / all new customers


class CacResult(TypedDict):
    """Customer acquisition cost per channel and month, and CLV:CAC per channel (cac_compute)."""

    as_of: str
    channels: list[CacChannel]
    totals: CacTotals


def _spend_rows(filters: MetricFilters) -> list[dict[str, Any]]:
    """Spend summed per (channel key, month index): monthly rows and daily rows in their month, all campaigns.

    Only spend dated up to as_of's day counts (a monthly row is dated the first of its month). A cohort range
    narrows spend to the same dates — daily rows inside it, monthly rows whose month overlaps it — so that CAC
    compares spend and customers of one period. The channel filter narrows spend to that channel.
    """
    as_of_day = filters.as_of.astimezone(UTC).date()
    spend = MarketingSpend.objects.filter(date__lte=as_of_day)
    if filters.channel is not None:
        spend = spend.filter(channel__key=filters.channel)
    if filters.cohort_start is not None:
        spend = spend.filter(
            Q(period=SpendPeriod.DAY, date__gte=filters.cohort_start)
            | Q(period=SpendPeriod.MONTH, date__gte=filters.cohort_start.replace(day=1))
        )
    if filters.cohort_end is not None:
        spend = spend.filter(date__lte=filters.cohort_end)
    rows = (
        spend.order_by()
        .annotate(month_index=month_index_expression("date", zone=None))
        .values("month_index", channel_key=F("channel__key"))
        .annotate(amount=Sum("amount"))
    )
    return [
        {"channel": row["channel_key"], "month": row["month_index"], "spend": to_float(row["amount"])} for row in rows
    ]


def _cac(spend: float, customers: int) -> float | None:
    return round_money(spend / customers) if customers else None


def cac_compute(*, filters: MetricFilters) -> CacResult:
    """CAC per acquisition channel and month, and per channel CLV:CAC, as of `filters.as_of`: two queries.

    - spend: marketing spend of the channel in the month (see _spend_rows);
    - new_customers: selected customers acquired through the channel whose first completed order (up to as_of)
      is in the month;
    - cac = spend / new_customers (None without new customers);
    per channel in total also: historical_clv = completed-order revenue up to as_of per customer acquired through
    the channel (buyers), predicted_clv = historical_clv + the mean stored expected_spend_365d of those buyers
    (None when none has a CustomerValue row), clv_cac = historical_clv / cac and predicted_clv_cac =
    predicted_clv / cac (None when either side is None or cac is 0).

    Result: CacResult; totals.cac is the blended CAC (all spend / all new customers, including those without an
    acquisition channel).
    """
    spend: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for row in _spend_rows(filters):
        spend[row["channel"]][int(row["month"])] += row["spend"]

    new: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    value: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    unattributed = 0
    for group in buyer_groups(filters):
        if group["channel"] is None:
            unattributed += group["customers"]
            continue
        new[group["channel"]][group["cohort"]] += group["customers"]
        for field in ("customers", "revenue", "predicted_customers", "predicted_sum"):
            value[group["channel"]][field] += group[field]

    channels: list[CacChannel] = []
    for channel in sorted(set(spend) | set(new)):
        months = sorted(set(spend[channel]) | set(new[channel]))
        channel_spend = sum(spend[channel].values(), 0.0)
        channel_new = sum(new[channel].values())
        cac = _cac(channel_spend, channel_new)
        totals = value[channel]
        historical = ratio(totals["revenue"], totals["customers"], 2)
        mean_predicted = ratio(totals["predicted_sum"], totals["predicted_customers"], 2)
        predicted = (
            round_money(historical + mean_predicted) if historical is not None and mean_predicted is not None else None
        )
        channels.append(
            {
                "channel": channel,
                "spend": round_money(channel_spend),
                "new_customers": channel_new,
                "cac": cac,
                "historical_clv": historical,
                "predicted_clv": predicted,
                "clv_cac": ratio(historical, cac, 2) if historical is not None and cac else None,
                "predicted_clv_cac": ratio(predicted, cac, 2) if predicted is not None and cac else None,
                "months": [
                    {
                        "month": month_label(month),
                        "spend": round_money(spend[channel].get(month, 0.0)),
                        "new_customers": new[channel].get(month, 0),
                        "cac": _cac(spend[channel].get(month, 0.0), new[channel].get(month, 0)),
                    }
                    for month in months
                ],
            }
        )
    total_spend = sum((sum(months.values(), 0.0) for months in spend.values()), 0.0)
    total_new = sum(channel["new_customers"] for channel in channels) + unattributed
    return {
        "as_of": filters.as_of.isoformat(),
        "channels": channels,
        "totals": {
            "spend": round_money(total_spend),
            "new_customers": total_new,
            "unattributed_new_customers": unattributed,
            "cac": _cac(total_spend, total_new),
        },
    }
