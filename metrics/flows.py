"""Flows (SPEC §4): how many stage transitions went from which stage to which over a period.

A cell counts *transitions*, not customers: a customer who moved active → inactive → active → inactive in the
period counts twice in the active → inactive cell. Each cell therefore also carries the number of distinct
customers behind it, which is what its drill-down lists. A transition with no `from` stage is a customer's first
classification in the model, shown as "(new)".
"""

from datetime import datetime
from typing import TypedDict

from django.db.models import Count, Exists, OuterRef, QuerySet

from lifecycle.models import Customer, LifecycleModel, Stage
from metrics.filters import FiltersJson, MetricFilters
from metrics.funnel import transition_log

NEW_LABEL = "(new)"


class FlowStage(TypedDict):
    key: str
    name: str
    name_de: str
    kind: str
    position: int


# "from" and "in" are Python keywords: these two are declared in the functional syntax.
FlowCell = TypedDict(
    "FlowCell",
    {
        "from": str | None,  # null: a first classification
        "from_name": str,
        "to": str,
        "to_name": str,
        "count": int,  # transitions
        "customers": int,  # distinct customers
    },
)
FlowTotals = TypedDict(
    "FlowTotals",
    {
        "transitions": int,
        "customers": int,
        "new": int,
        "out": dict[str, int],  # stage key: transitions leaving it (every stage, zero included)
        "in": dict[str, int],  # stage key: transitions entering it
    },
)


class FlowsResult(TypedDict):
    """Stage transitions from × to in a period (flows_compute)."""

    model: str
    as_of: str
    start: str
    end: str
    filters: FiltersJson
    new_label: str
    stages: list[FlowStage]  # funnel order
    cells: list[FlowCell]  # non-empty cells only
    totals: FlowTotals


def _period_log(*, model: LifecycleModel, start: datetime, end: datetime, filters: MetricFilters) -> QuerySet:
    """Transitions with start <= at <= end (and at <= as_of, like every metric) of the filtered customers."""
    return transition_log(model=model, filters=filters).filter(at__gte=start, at__lte=end)


def flows_compute(*, model: LifecycleModel, start: datetime, end: datetime, filters: MetricFilters) -> FlowsResult:
    """The from × to matrix of the model's transitions with start <= at <= end (capped at `filters.as_of`). 3 queries.

    Result: FlowsResult.
    """
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk"))
    by_id = {stage.pk: stage for stage in stages}
    order = {stage.pk: i for i, stage in enumerate(stages)}
    log = _period_log(model=model, start=start, end=end, filters=filters).order_by()
    rows = (
        log.values("from_stage", "to_stage")
        .annotate(n=Count("pk"), customers=Count("customer", distinct=True))
        .values_list("from_stage", "to_stage", "n", "customers")
    )
    # Rows in matrix order: "(new)" first, then by the stages' funnel order.
    rows = sorted(rows, key=lambda row: (-1 if row[0] is None else order[row[0]], order[row[1]]))
    cells: list[FlowCell] = [
        {
            "from": by_id[from_id].key if from_id is not None else None,
            "from_name": by_id[from_id].name_en if from_id is not None else NEW_LABEL,
            "to": by_id[to_id].key,
            "to_name": by_id[to_id].name_en,
            "count": n,
            "customers": customers,
        }
        for from_id, to_id, n, customers in rows
    ]
    outflow = {stage.key: 0 for stage in stages}
    inflow = {stage.key: 0 for stage in stages}
    for cell in cells:
        inflow[cell["to"]] += cell["count"]
        if cell["from"] is not None:
            outflow[cell["from"]] += cell["count"]
    # Distinct customers over all cells cannot be added up from the cells (one customer can sit in several).
    distinct = log.aggregate(n=Count("customer", distinct=True))["n"] if cells else 0
    return {
        "model": model.key,
        "as_of": filters.as_of.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "filters": filters.as_json(),
        "new_label": NEW_LABEL,
        "stages": [
            {"key": s.key, "name": s.name_en, "name_de": s.name_de, "kind": s.kind, "position": s.position}
            for s in stages
        ],
        "cells": cells,
        "totals": {
            "transitions": sum(cell["count"] for cell in cells),
            "customers": distinct,
            "new": sum(cell["count"] for cell in cells if cell["from"] is None),
            "out": outflow,
            "in": inflow,
        },
    }


def flow_customers(
    *,
    model: LifecycleModel,
    start: datetime,
    end: datetime,
    filters: MetricFilters,
    from_key: str | None,
    to_key: str,
) -> QuerySet[Customer]:
    """The distinct customers behind one flow cell: those with a transition from `from_key` (None: a first
    classification) to `to_key` with start <= at <= end (and at <= as_of). Lazy; one query when evaluated.

    Its length is the cell's `customers`, which is at most its `count` (a customer may make the same move twice).
    Raises ValueError for a stage key the model does not have.
    """
    known = set(Stage.objects.filter(model=model).values_list("key", flat=True))
    for key in (from_key, to_key):
        if key is not None and key not in known:
            raise ValueError(f"Unknown stage {key!r} in model {model.key!r}; known: {', '.join(sorted(known))}.")
    moves = _period_log(model=model, start=start, end=end, filters=filters).filter(
        customer=OuterRef("pk"), to_stage__key=to_key
    )
    moves = moves.filter(from_stage__isnull=True) if from_key is None else moves.filter(from_stage__key=from_key)
    return Customer.objects.filter(Exists(moves))
