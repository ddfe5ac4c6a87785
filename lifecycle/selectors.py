from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Exists, F, FilteredRelation, Max, Min, OuterRef, Prefetch, Q, QuerySet

from clm.base.sql import estimated_distinct, estimated_rows
from lifecycle.models import (
    Channel,
    ClassificationRun,
    Customer,
    CustomerStage,
    Feedback,
    LifecycleModel,
    Order,
    Stage,
    StageTransition,
    Touchpoint,
)


def data_summary() -> dict[str, Any]:
    """How much data CLM holds, and the time span of the orders; large tables estimated (`approximate`)."""
    span = Order.objects.aggregate(first=Min("placed_at"), last=Max("placed_at"))
    tables = estimated_rows([Customer, Order, Touchpoint, Feedback])
    order_rows = tables[Order]
    estimates = {
        "customers": tables[Customer],
        "customers_with_orders": order_rows and estimated_distinct(Order, "customer_id", order_rows),
        "orders": tables[Order],
        "touchpoints": tables[Touchpoint],
        "feedback": tables[Feedback],
    }
    exact = {
        "customers": Customer.objects.count,
        "customers_with_orders": Order.objects.values("customer_id").distinct().count,
        "orders": Order.objects.count,
        "touchpoints": Touchpoint.objects.count,
        "feedback": Feedback.objects.count,
    }
    counts = {name: estimate if estimate is not None else exact[name]() for name, estimate in estimates.items()}
    return {
        **counts,
        "approximate": any(estimate is not None for estimate in estimates.values()),
        "channels": Channel.objects.filter(active=True).count(),
        "first_order_at": span["first"],
        "last_order_at": span["last"],
    }


# How long counted current stages are reused while the model's latest run is unchanged (a pass under way).
STAGE_COUNTS_SECONDS = 60


def current_stage_counts(*, model: LifecycleModel) -> dict[int, int]:
    """Customers currently in each stage of a model (stage id → count; stages without customers left out).

    Counting scans the model's current stages (160 ms for 700,000 of them), and the overview shows them on every
    load: the counts are kept in the cache under the state of the model's latest run (id, status, transitions so
    far), so a finished run — an event run after an ingestion included — is shown at once, and counts changing
    under a run still under way are at most STAGE_COUNTS_SECONDS old.
    """
    latest = (
        ClassificationRun.objects.filter(model=model)
        .order_by("-started_at", "-pk")
        .values_list("pk", "status", "transitions")
        .first()
    )
    key = f"lifecycle:stage-counts:{model.pk}:{':'.join(map(str, latest or ()))}"
    counts = cache.get(key)
    if counts is None:
        counts = dict(
            CustomerStage.objects.filter(model=model)
            .order_by()
            .values("stage")
            .annotate(n=Count("pk"))
            .values_list("stage", "n")
        )
        cache.set(key, counts, STAGE_COUNTS_SECONDS)
    return counts


def stage_counts(*, model: LifecycleModel) -> dict[str, int]:
    """Customers currently in each stage of a model, every stage listed (zero included), in funnel order."""
    counts = current_stage_counts(model=model)
    return {stage.key: counts.get(stage.pk, 0) for stage in model.stages.order_by("position", "pk")}


# --- lifecycle API reads --------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStage:
    key: str
    name: str
    kind: str
    position: int
    count: int


def lifecycle_model_get(*, key: str) -> LifecycleModel | None:
    return LifecycleModel.objects.filter(key=key).first()


def lifecycle_model_default() -> LifecycleModel | None:
    return LifecycleModel.objects.filter(is_default=True).first()


def lifecycle_model_keys() -> list[str]:
    return list(LifecycleModel.objects.order_by("key").values_list("key", flat=True))


def lifecycle_model_list() -> QuerySet[LifecycleModel]:
    """Every model (default first) with its stages in funnel order: two queries."""
    return (
        LifecycleModel.objects.select_related("fallback_stage")
        .prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("position", "pk")))
        .order_by("-is_default", "key")
    )


def stage_get(*, model: LifecycleModel, key: str) -> Stage | None:
    return Stage.objects.filter(model=model, key=key).first()


def stage_keys(*, model: LifecycleModel) -> list[str]:
    return list(Stage.objects.filter(model=model).order_by("position", "pk").values_list("key", flat=True))


def stage_counts_as_of(*, model: LifecycleModel, as_of: datetime) -> dict[int, int]:
    """Customers per stage id as of a past moment, read from the transition log in one aggregate query.

    A customer is in the stage their last transition at or before `as_of` led to (on equal `at`, the later
    row); customers without a transition by then are not counted. "Last" is an anti-join: a transition counts
    when no later one of the same customer exists by `as_of`. PostgreSQL runs it as a hash anti-join, SQLite
    probes the (customer, model, at) index; both beat a per-row "latest id" subquery several times over.
    """
    by_then = StageTransition.objects.filter(model=model, at__lte=as_of)
    later = by_then.filter(customer=OuterRef("customer")).filter(
        Q(at__gt=OuterRef("at")) | Q(at=OuterRef("at"), pk__gt=OuterRef("pk"))
    )
    return dict(
        by_then.filter(~Exists(later))
        .order_by()
        .values("to_stage")
        .annotate(n=Count("pk"))
        .values_list("to_stage", "n")
    )


def model_pipeline(*, model: LifecycleModel, as_of: datetime | None = None) -> list[PipelineStage]:
    """Every stage of a model in funnel order with its customer count (zero included): three queries at most.

    Without `as_of` the counts are the current stages; with it, they come from the transition log (see
    stage_counts_as_of), so they agree with funnels and flows, which read the same log.
    """
    if as_of is None:
        counts = current_stage_counts(model=model)
    else:
        counts = stage_counts_as_of(model=model, as_of=as_of)
    return [
        PipelineStage(key=s.key, name=s.name_en, kind=s.kind, position=s.position, count=counts.get(s.pk, 0))
        for s in Stage.objects.filter(model=model).order_by("position", "pk")
    ]


def customer_list(
    *,
    model: LifecycleModel,
    stage: Stage | None = None,
    changed_since: datetime | None = None,
    changed_before: datetime | None = None,
) -> QuerySet[Customer]:
    """Customers with their current stage in `model` (None when not classified yet), in one query.

    With `stage`, only customers currently in it; with `changed_since` / `changed_before`, only customers whose
    stage in the model changed in [changed_since, changed_before). Every row carries `stage_key`, `since`,
    `acquisition_channel_key` and `referred_by_external_id` as annotations, so serializing needs no more queries.
    """
    customers = Customer.objects.annotate(
        current=FilteredRelation("stages", condition=Q(stages__model=model)),
    ).annotate(
        current_stage_id=F("current__stage"),
        stage_key=F("current__stage__key"),
        since=F("current__since"),
        acquisition_channel_key=F("acquisition_channel__key"),
        referred_by_external_id=F("referred_by__external_id"),
    )
    # Filters go through the annotations: they reuse the one join, where `current__…` lookups would add a join each.
    if stage is not None:
        customers = customers.filter(current_stage_id=stage.pk)
    if changed_since is not None:
        customers = customers.filter(since__gte=changed_since)
    if changed_before is not None:
        customers = customers.filter(since__lt=changed_before)
    return customers


def customer_get(*, external_id: str) -> Customer | None:
    """One customer with the keys of their acquisition channel and referrer annotated: one query."""
    return (
        Customer.objects.filter(external_id=external_id)
        .annotate(
            acquisition_channel_key=F("acquisition_channel__key"),
            referred_by_external_id=F("referred_by__external_id"),
        )
        .first()
    )


def customer_current_stages(*, customer: Customer) -> list[dict[str, Any]]:
    """The customer's current stage in every active model (default model first; stage None when not classified
    yet): two queries."""
    current = {
        row.model_id: row
        for row in CustomerStage.objects.filter(customer=customer, model__active=True).select_related("stage")
    }
    rows = []
    for model in LifecycleModel.objects.filter(active=True).order_by("-is_default", "key"):
        entry = current.get(model.pk)
        rows.append(
            {
                "model": model.key,
                "stage": entry.stage.key if entry else None,
                "stage_name": entry.stage.name_en if entry else None,
                "kind": entry.stage.kind if entry else None,
                "since": entry.since if entry else None,
            }
        )
    return rows


def customer_transitions(
    *, customer: Customer, model: LifecycleModel | None = None, limit: int = 1000
) -> tuple[list[StageTransition], bool]:
    """The customer's newest `limit` stage changes (in one model or all), oldest first, with the keys annotated,
    and whether older ones were left out: one query."""
    transitions = StageTransition.objects.filter(customer=customer)
    if model is not None:
        transitions = transitions.filter(model=model)
    newest: list[StageTransition] = list(
        transitions.annotate(
            model_key=F("model__key"), from_key=F("from_stage__key"), to_key=F("to_stage__key")
        ).order_by("-at", "-pk")[: limit + 1]
    )
    return newest[:limit][::-1], len(newest) > limit


def classification_run_get(*, run_id: int) -> ClassificationRun | None:
    return ClassificationRun.objects.select_related("model").filter(pk=run_id).first()
