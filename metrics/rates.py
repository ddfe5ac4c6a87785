"""The rates of the e-commerce CLM literature (SPEC §4) over a period [start, end], each with its numerator,
denominator and a one-line definition.

Only events at or before `end` count (and `end` is capped at `filters.as_of`, like every metric); every rate is
computed over the customers the filters select. A rate whose denominator is 0 is null, never an error.

Customer-based rates come from one grouped query over customers (a handful of flags per customer, counted per
combination of flags); churn and reactivation read the stage transition log, with a customer's stage at the start
found by the same anti-join as lifecycle.selectors.stage_counts_as_of; NPS reads each customer's latest answer
(also an anti-join) with their stage as of `end`. Six queries whatever the number of customers.
"""

from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Least

from clm.base.sql import grouped_counts
from lifecycle.features import FEATURES
from lifecycle.models import Customer, Feedback, LifecycleModel, Order, OrderStatus, Stage, StageKind, StageTransition
from metrics.filters import FiltersJson, MetricFilters
from metrics.funnel import transition_log

PROMOTERS = range(9, 11)
DETRACTORS = range(0, 7)
RESOLUTION = timedelta(microseconds=1)  # of timestamps on both databases: [start, end] lasts end − start + 1 µs

DEFINITIONS = {
    "conversion_rate": "Customers first seen in the period whose first completed order is at or before its end / "
    "customers first seen in the period (leads → first-time customers).",
    "repeat_purchase_rate": "Customers with at least 2 completed orders by the end of the period / customers with at "
    "least 1 (buyers by then).",
    "retention_rate": "Customers with a completed order in the previous period of equal length who also have one in "
    "this period / customers with a completed order in the previous period.",
    "churn_rate": "Customers in a funnel stage at the start of the period who moved from a funnel stage to an exit "
    "stage during it / customers in a funnel stage at the start.",
    "reactivation_rate": "Customers in an exit stage at the start of the period who moved from an exit stage to a "
    "funnel stage during it / customers in an exit stage at the start.",
    "referral_rate": "Customers who referred at least one customer first seen by the end of the period / customers "
    "first seen by then.",
    "nps": "Net Promoter Score: 100 × (promoters (9–10) − detractors (0–6)) / respondents, from each customer's "
    "latest answer by the end of the period.",
}


class Rate(TypedDict):
    """A share 0–1 (null when the denominator is 0) with its goal and benchmark, which
    metrics.targets.rates_with_targets fills in (rates_compute leaves them empty)."""

    value: float | None
    numerator: int
    denominator: int
    definition: str
    goal: float | None
    benchmark: float | None
    benchmark_source: str
    below_goal: bool
    below_benchmark: bool


class RetentionRate(Rate):
    previous_start: str  # the previous period's first moment


class StageRate(Rate):
    transitions: int  # every such move in the period, for reference
    note: NotRequired[str]  # only without a lifecycle model


class NpsRate(Rate):
    """value: the Net Promoter Score, −100…100."""

    responses: int
    promoters: int
    passives: int
    detractors: int


class Rates(TypedDict):
    conversion_rate: Rate
    repeat_purchase_rate: Rate
    retention_rate: RetentionRate
    churn_rate: StageRate
    reactivation_rate: StageRate
    referral_rate: Rate
    nps: NpsRate


class NpsCounts(TypedDict):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None


class StageNps(NpsCounts):
    stage: str | None  # null: respondents without a stage in the model by the end
    name: str
    name_de: str
    kind: str | None


class RatesResult(TypedDict):
    """Every named rate over a period, and NPS per stage (rates_compute)."""

    model: str | None
    as_of: str
    start: str
    end: str
    filters: FiltersJson
    rates: Rates
    nps_by_stage: list[StageNps]  # every stage in funnel order, then "(no stage)" respondents if any


def _rate(name: str, numerator: int, denominator: int, **extra: Any) -> Any:
    """A Rate (with the extra fields of its kind) whose targets are still empty."""
    return {
        "value": numerator / denominator if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
        "definition": DEFINITIONS[name],
        **extra,
        "goal": None,
        "benchmark": None,
        "benchmark_source": "",
        "below_goal": False,
        "below_benchmark": False,
    }


def _completed(customer: Any = None) -> QuerySet[Order]:
    return Order.objects.filter(customer=customer or OuterRef("pk"), status=OrderStatus.COMPLETED).order_by()


def _customer_rates(
    *, customers: QuerySet[Customer], start: datetime, end: datetime, previous_start: datetime
) -> dict[str, dict[str, Any]]:
    """Conversion, repeat purchase, retention and referral rates: one query grouped by each customer's flags."""
    rows = (
        customers.filter(first_seen_at__lte=end)
        .annotate(
            rate_lead=ExpressionWrapper(Q(first_seen_at__gte=start), output_field=BooleanField()),
            # 0, 1 or "2 or more" completed orders by end: the order_count feature as of end, capped.
            rate_orders=Least(FEATURES["order_count"].expression(end), Value(2)),
            rate_before=Exists(_completed().filter(placed_at__gte=previous_start, placed_at__lt=start)),
            rate_during=Exists(_completed().filter(placed_at__gte=start, placed_at__lte=end)),
            rate_referrer=Exists(Customer.objects.filter(referred_by=OuterRef("pk"), first_seen_at__lte=end)),
        )
        .order_by()
        .values("rate_lead", "rate_orders", "rate_before", "rate_during", "rate_referrer")
    )
    # order_count is an aggregate per customer: the flags are counted around that grouped query.
    rows = grouped_counts(rows, ["rate_lead", "rate_orders", "rate_before", "rate_during", "rate_referrer"])
    counts = dict.fromkeys(
        ["customers", "leads", "converted", "buyers", "repeat", "previous", "retained", "referrers"], 0
    )
    for lead, orders, before, during, referrer, n in rows:
        counts["customers"] += n
        counts["leads"] += n if lead else 0
        counts["converted"] += n if lead and orders >= 1 else 0
        counts["buyers"] += n if orders >= 1 else 0
        counts["repeat"] += n if orders >= 2 else 0
        counts["previous"] += n if before else 0
        counts["retained"] += n if before and during else 0
        counts["referrers"] += n if referrer else 0
    return {
        "conversion_rate": _rate("conversion_rate", counts["converted"], counts["leads"]),
        "repeat_purchase_rate": _rate("repeat_purchase_rate", counts["repeat"], counts["buyers"]),
        "retention_rate": _rate(
            "retention_rate", counts["retained"], counts["previous"], previous_start=previous_start.isoformat()
        ),
        "referral_rate": _rate("referral_rate", counts["referrers"], counts["customers"]),
    }


def _latest(log: QuerySet, moment_field: str) -> QuerySet:
    """The rows of `log` with no later row of the same customer (on an equal moment, the higher id is later)."""
    later = log.filter(customer=OuterRef("customer")).filter(
        Q(**{f"{moment_field}__gt": OuterRef(moment_field)})
        | Q(**{moment_field: OuterRef(moment_field), "pk__gt": OuterRef("pk")})
    )
    return log.filter(~Exists(later))


def _stage_rates(
    *, model: LifecycleModel | None, start: datetime, end: datetime, filters: MetricFilters
) -> dict[str, dict[str, Any]]:
    """Churn and reactivation from the transition log: two queries (none without a model)."""
    if model is None:
        return {
            name: _rate(name, 0, 0, transitions=0, note="no lifecycle model")
            for name in ("churn_rate", "reactivation_rate")
        }
    log = transition_log(model=model, filters=filters)
    in_period = log.filter(at__gte=start, at__lte=end)
    # Stage ids rather than a join on the stage's kind, and the movers as uncorrelated IN subqueries: with a
    # per-customer EXISTS joined to the stages, SQLite scanned the period's transitions per customer (11.6 s on
    # CDNOW + demo; now 0.28 s).
    kind_of = dict(Stage.objects.filter(model=model).values_list("pk", "kind"))
    funnel_ids = [pk for pk, kind in kind_of.items() if kind == StageKind.FUNNEL]
    exit_ids = [pk for pk, kind in kind_of.items() if kind == StageKind.EXIT]
    funnel_to_exit = Q(from_stage_id__in=funnel_ids, to_stage_id__in=exit_ids)
    exit_to_funnel = Q(from_stage_id__in=exit_ids, to_stage_id__in=funnel_ids)
    # Each customer's stage at the start: their last transition before it (one at exactly `start` is in the period).
    churners = in_period.filter(funnel_to_exit).values("customer")
    reactivators = in_period.filter(exit_to_funnel).values("customer")
    counts = _latest(log.filter(at__lt=start), "at").aggregate(
        funnel=Count("pk", filter=Q(to_stage_id__in=funnel_ids)),
        exit=Count("pk", filter=Q(to_stage_id__in=exit_ids)),
        churned=Count("pk", filter=Q(to_stage_id__in=funnel_ids, customer__in=churners)),
        reactivated=Count("pk", filter=Q(to_stage_id__in=exit_ids, customer__in=reactivators)),
    )
    transitions = in_period.aggregate(
        churn=Count("pk", filter=funnel_to_exit), reactivation=Count("pk", filter=exit_to_funnel)
    )
    # `transitions`: every such move in the period, by anyone selected (a customer may move twice, or may not have
    # been in the starting population), for reference; the rate counts customers, so it stays a share.
    return {
        "churn_rate": _rate("churn_rate", counts["churned"], counts["funnel"], transitions=transitions["churn"]),
        "reactivation_rate": _rate(
            "reactivation_rate", counts["reactivated"], counts["exit"], transitions=transitions["reactivation"]
        ),
    }


def _nps_counts(rows: list[tuple[int, int]]) -> NpsCounts:
    """Promoters, passives and detractors of (score, respondents) rows, and the NPS (null without respondents)."""
    promoters = sum(n for score, n in rows if score in PROMOTERS)
    detractors = sum(n for score, n in rows if score in DETRACTORS)
    responses = sum(n for _, n in rows)
    return {
        "responses": responses,
        "promoters": promoters,
        "passives": responses - promoters - detractors,
        "detractors": detractors,
        "nps": 100 * (promoters - detractors) / responses if responses else None,
    }


def _nps(
    *, model: LifecycleModel | None, customers: QuerySet[Customer], end: datetime
) -> tuple[NpsRate, list[StageNps]]:
    """NPS overall and per stage as of `end`: one query grouped by (stage, score), plus the model's stages."""
    answers = Feedback.objects.filter(submitted_at__lte=end, customer__in=customers.values("pk")).order_by()
    latest = _latest(answers, "submitted_at")
    if model is not None:
        stage_at_end = Subquery(
            StageTransition.objects.filter(model=model, customer=OuterRef("customer"), at__lte=end)
            .order_by("-at", "-pk")
            .values("to_stage")[:1]
        )
        latest = latest.annotate(stage_at_end=stage_at_end)
    else:
        latest = latest.annotate(stage_at_end=Value(None, output_field=IntegerField()))
    rows = list(latest.values_list("stage_at_end", "score").annotate(n=Count("pk")))

    overall = _nps_counts([(score, n) for _, score, n in rows])
    rate = _rate(
        "nps",
        overall["promoters"] - overall["detractors"],
        overall["responses"],
        **{key: overall[key] for key in ("responses", "promoters", "passives", "detractors")},
    )
    rate["value"] = overall["nps"]  # a score from −100 to 100, not the share numerator / denominator

    by_stage: list[StageNps] = []
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk")) if model is not None else []
    for stage in stages:
        counts = _nps_counts([(score, n) for stage_id, score, n in rows if stage_id == stage.pk])
        by_stage.append(
            {"stage": stage.key, "name": stage.name_en, "name_de": stage.name_de, "kind": stage.kind, **counts}
        )
    known = {stage.pk for stage in stages}
    unclassified = [(score, n) for stage_id, score, n in rows if stage_id not in known]
    if unclassified:  # respondents without a stage in the model by end (or no model given)
        by_stage.append({"stage": None, "name": "(no stage)", "name_de": "(keine Phase)", "kind": None,
                         **_nps_counts(unclassified)})  # fmt: skip
    return rate, by_stage


def rates_compute(
    *, model: LifecycleModel | None, start: datetime, end: datetime, filters: MetricFilters
) -> RatesResult:
    """Every named rate over [start, end] for the customers the filters select: 6 queries.

    `end` is capped at `filters.as_of`. The previous period of the retention rate is the same length just before:
    [start − (end − start + 1 µs), start). Churn, reactivation and NPS per stage need `model` (null rates, and NPS
    only overall, without one).

    Result: RatesResult. Rates are shares 0–1; NPS is −100…100 with `responses`, `promoters`, `passives`,
    `detractors`; retention adds `previous_start`; churn and reactivation add `transitions` (all such moves in the
    period). The rates' goals and benchmarks are empty: metrics.targets.rates_with_targets fills them in.
    Raises ValueError when start is after end.
    """
    end = min(end, filters.as_of)
    if start > end:
        raise ValueError(f"start ({start.isoformat()}) must not be after end ({end.isoformat()}, capped at as_of).")
    previous_start = start - (end - start + RESOLUTION)
    customers = filters.customers().filter(first_seen_at__lte=end)

    rates = _customer_rates(customers=customers, start=start, end=end, previous_start=previous_start)
    rates.update(_stage_rates(model=model, start=start, end=end, filters=filters))
    rates["nps"], nps_by_stage = _nps(model=model, customers=customers, end=end)
    return {
        "model": model.key if model is not None else None,
        "as_of": filters.as_of.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "filters": filters.as_json(),
        "rates": {name: rates[name] for name in DEFINITIONS},
        "nps_by_stage": nps_by_stage,
    }
