"""What a campaign cost and brought, as of a moment: seven set-based queries whatever the data size."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from campaigns.models import Campaign, MarketingSpend
from clm.base.days import day_start
from lifecycle.models import Customer, Order, OrderStatus, Stage, StageKind, StageTransition, Touchpoint

ATTRIBUTION_CODE_LABEL = "orders carrying the campaign code"
ATTRIBUTION_WINDOW_LABEL = "orders within {days} days after a campaign touchpoint"
ADVANCEMENT_DEFINITION = (
    "Of the reached customers who were in a target stage at their first campaign touchpoint (the stage their last "
    "transition at or before that moment led to), the share whose next transition, within attribution_days after "
    "the touchpoint, went to a later funnel stage (from a funnel stage) or into any funnel stage (from an exit "
    "stage)."
)
NEW_CUSTOMERS_DEFINITION = (
    "Customers whose first completed order (up to as_of) is attributed to the campaign by either attribution: it "
    "carries the campaign code and was placed on or after the start date, or it was placed within "
    "attribution_days after the customer's first campaign touchpoint."
)


def _money(value: Decimal | float | None) -> float:
    return round(float(value or 0), 2)


def _ratio(numerator: float, denominator: float, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _advancement_pairs(*, targets: Iterable[Stage], stages: Iterable[Stage]) -> dict[int, list[int]]:
    """For each target stage id, the stage ids a next transition must lead to for the customer to count as
    advanced: later funnel stages from a funnel stage, any funnel stage from an exit stage."""
    funnel = [stage for stage in stages if stage.kind == StageKind.FUNNEL]
    pairs = {}
    for target in targets:
        if target.kind == StageKind.EXIT:
            pairs[target.pk] = [stage.pk for stage in funnel]
        else:
            pairs[target.pk] = [stage.pk for stage in funnel if stage.position > target.position]
    return pairs


def campaign_results(*, campaign: Campaign, as_of: datetime | None = None) -> dict[str, Any]:
    """What the campaign cost and brought, as of a moment (default now): seven queries whatever the data size.

    Period: from the start date's first moment to the end date's last (UTC); nothing after `as_of` counts.

    - spend: every MarketingSpend row carrying the code (any channel, day and month rows) dated up to as_of;
    - reached: distinct customers with a touchpoint carrying the code in the period; a customer's *first campaign
      touchpoint* is the earliest of those;
    - advancement: see ADVANCEMENT_DEFINITION (in_target_stage, advanced, rate = advanced / in_target_stage);
    - revenue, two attributions, each with orders, customers, revenue and roas = revenue / spend (None without
      spend), only completed orders placed up to as_of:
      - campaign_code: orders carrying the code placed on or after the start date (no end: a campaign link keeps
        selling after the campaign stops);
      - touchpoint_window: orders of reached customers placed from their first campaign touchpoint to
        attribution_days after it, whatever code they carry;
      an order can count in both, so the two must not be added up;
    - new_customers: see NEW_CUSTOMERS_DEFINITION (total, and by each attribution; a customer can count in both);
    - cac = spend / new_customers.total (None without new customers).
    """
    as_of = as_of or timezone.now()
    start = day_start(campaign.start_date)
    end = day_start(campaign.end_date + timedelta(days=1))  # exclusive
    window = timedelta(days=campaign.attribution_days)

    # Query 1: target stages and all stages of the model (few rows) decide which transitions count as advancing.
    stages = list(Stage.objects.filter(model_id=campaign.model_id).order_by())
    target_ids = set(campaign.stages.order_by().values_list("pk", flat=True))  # query 2
    pairs = _advancement_pairs(targets=[s for s in stages if s.pk in target_ids], stages=stages)

    spend = _money(  # query 3
        MarketingSpend.objects.filter(campaign_code=campaign.code, date__lte=as_of.astimezone(UTC).date()).aggregate(
            total=Sum("amount")
        )["total"]
    )

    touches = Touchpoint.objects.filter(
        campaign_code=campaign.code, occurred_at__gte=start, occurred_at__lt=end, occurred_at__lte=as_of
    )

    def first_touch(customer_ref: str) -> Subquery:
        # The (customer, occurred_at) index answers this per customer with one index probe.
        return Subquery(
            touches.filter(customer_id=OuterRef(customer_ref)).order_by("occurred_at").values("occurred_at")[:1]
        )

    def window_end(field: str) -> ExpressionWrapper:
        return ExpressionWrapper(F(field) + window, output_field=DateTimeField())

    # Query 4: reached customers, their stage at the first campaign touchpoint and their next transition.
    transitions = StageTransition.objects.filter(customer_id=OuterRef("pk"), model_id=campaign.model_id)
    following = transitions.filter(at__gt=OuterRef("first_touch"), at__lte=as_of).order_by("at", "pk")
    reached_customers = Customer.objects.filter(pk__in=touches.values("customer_id")).annotate(
        first_touch=first_touch("pk"),
        stage_at_touch=Subquery(
            transitions.filter(at__lte=OuterRef("first_touch")).order_by("-at", "-pk").values("to_stage_id")[:1]
        ),
        next_stage=Subquery(following.values("to_stage_id")[:1]),
        next_at=Subquery(following.values("at")[:1]),
    )
    advanced_to = Q()
    for target_id, destinations in pairs.items():
        if destinations:
            advanced_to |= Q(stage_at_touch=target_id, next_stage__in=destinations)
    # A campaign always has target stages, but the top funnel stage has nowhere to advance to: an empty condition
    # is left out of the query rather than compiled into an always-false one.
    counts: dict[str, Any] = {"reached": Count("pk")}
    if target_ids:
        counts["in_target_stage"] = Count("pk", filter=Q(stage_at_touch__in=target_ids))
    if advanced_to:
        counts["advanced"] = Count("pk", filter=advanced_to & Q(next_at__lte=window_end("first_touch")))
    reach = {"in_target_stage": 0, "advanced": 0, **reached_customers.aggregate(**counts)}

    completed = Order.objects.filter(status=OrderStatus.COMPLETED, placed_at__lte=as_of)
    totals = {"orders": Count("pk"), "customers": Count("customer_id", distinct=True), "revenue": Sum("amount")}
    # Query 5: attribution (a), the code on the order.
    code_orders = completed.filter(campaign_code=campaign.code, placed_at__gte=start)
    by_code = code_orders.aggregate(**totals)
    # Query 6: attribution (b), an order in the window after the customer's first campaign touchpoint.
    by_window = (
        completed.filter(customer_id__in=touches.values("customer_id"))
        .annotate(first_touch=first_touch("customer_id"))
        .filter(placed_at__gte=F("first_touch"), placed_at__lte=window_end("first_touch"))
        .aggregate(**totals)
    )

    # Query 7: new customers: the first completed order (up to as_of) of each candidate, attributed either way.
    first_order = completed.filter(customer_id=OuterRef("pk")).order_by("placed_at", "pk")
    new_by_code = Q(first_order_code=campaign.code, first_order_at__gte=start)
    new_by_window = Q(
        first_touch__isnull=False, first_order_at__gte=F("first_touch"), first_order_at__lte=window_end("first_touch")
    )
    new = (
        Customer.objects.filter(Q(pk__in=code_orders.values("customer_id")) | Q(pk__in=touches.values("customer_id")))
        .annotate(
            first_order_at=Subquery(first_order.values("placed_at")[:1]),
            first_order_code=Subquery(first_order.values("campaign_code")[:1]),
            first_touch=first_touch("pk"),
        )
        .aggregate(
            total=Count("pk", filter=new_by_code | new_by_window),
            by_campaign_code=Count("pk", filter=new_by_code),
            by_touchpoint_window=Count("pk", filter=new_by_window),
        )
    )

    def attribution(label: str, row: dict[str, Any]) -> dict[str, Any]:
        revenue = _money(row["revenue"])
        return {
            "label": label,
            "orders": row["orders"],
            "customers": row["customers"],
            "revenue": revenue,
            "roas": _ratio(revenue, spend, 4),
        }

    return {
        "code": campaign.code,
        "as_of": as_of.isoformat(),
        "period": {"start": campaign.start_date.isoformat(), "end": campaign.end_date.isoformat()},
        "attribution_days": campaign.attribution_days,
        "spend": spend,
        "budget": None if campaign.budget is None else _money(campaign.budget),
        "reached": reach["reached"],
        "advancement": {
            "in_target_stage": reach["in_target_stage"],
            "advanced": reach["advanced"],
            "rate": _ratio(reach["advanced"], reach["in_target_stage"], 4),
            "definition": ADVANCEMENT_DEFINITION,
        },
        "revenue": {
            "campaign_code": attribution(ATTRIBUTION_CODE_LABEL, by_code),
            "touchpoint_window": attribution(
                ATTRIBUTION_WINDOW_LABEL.format(days=campaign.attribution_days), by_window
            ),
        },
        "new_customers": {
            "total": new["total"],
            "by_campaign_code": new["by_campaign_code"],
            "by_touchpoint_window": new["by_touchpoint_window"],
            "definition": NEW_CUSTOMERS_DEFINITION,
        },
        "cac": _ratio(spend, new["total"], 2),
    }
