"""The lifecycle funnel (SPEC §4), read from the stage transition log.

reached(i) counts the customers who have ever, by `as_of`, entered funnel step i or a later funnel step: a customer
who went prospect → new → inactive still reached `new`, and one classified straight into `active` reached every
step before it too. Exit stages are no step, so a detour through them neither counts nor hides a step.

Everything is computed from one aggregate per customer: the moment they first entered "step i or later", for every
step i (a `MIN(CASE …)` per step, grouped by customer). The funnel counts aggregate those rows once more (Django
wraps the grouped query in a subquery), and the drill-downs filter the same rows, so every count equals the length
of its customer list by construction.
"""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, TypedDict

from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, When

from lifecycle.models import Customer, LifecycleModel, Stage, StageKind, StageTransition
from metrics.filters import FiltersJson, MetricFilters

FunnelOutcome = Literal["reached", "converted", "dropped"]
OUTCOMES: tuple[str, ...] = ("reached", "converted", "dropped")


class FunnelStep(TypedDict):
    stage: str
    name: str
    name_de: str
    position: int
    reached: int
    converted: int | None
    conversion: float | None
    drop_off: int | None
    drop_off_rate: float | None
    goal: float | None
    benchmark: float | None
    below_goal: bool
    below_benchmark: bool
    biggest_drop_off: bool


class FunnelResult(TypedDict):
    """Reached, conversion and drop-off per funnel step (funnel_compute)."""

    model: str
    as_of: str
    filters: FiltersJson
    window_days: int | None
    customers: int
    steps: list[FunnelStep]


def transition_log(*, model: LifecycleModel, filters: MetricFilters) -> QuerySet[StageTransition]:
    """The model's transitions up to `filters.as_of`, of the customers the filters select.

    The customer subquery is only joined when a cohort or channel narrows the customers: without one, every
    customer with a transition by as_of was first seen by then, so the join would change nothing but the speed.
    """
    log = StageTransition.objects.filter(model=model, at__lte=filters.as_of)
    if filters.filters_customers:
        log = log.filter(customer__in=filters.customers().values("pk"))
    return log


def funnel_stages(*, model: LifecycleModel) -> list[Stage]:
    """The model's funnel stages in funnel order (position, then id so equal positions stay deterministic)."""
    return list(Stage.objects.filter(model=model, kind=StageKind.FUNNEL).order_by("position", "pk"))


def first_entries(*, model: LifecycleModel, filters: MetricFilters, stages: Sequence[Stage]) -> QuerySet:
    """One row per customer with a transition by as_of: `first_<i>` = when they first entered step i or a later one.

    `first_<i>` is NULL when the customer never reached step i. Since entering a later step is also entering
    "step i or later", first_0 <= first_1 <= … wherever they are set.
    """
    ids = [stage.pk for stage in stages]
    firsts = {
        f"first_{i}": Min(Case(When(to_stage_id__in=ids[i:], then=F("at")))) for i in range(len(stages))
    }  # fmt: skip
    return transition_log(model=model, filters=filters).order_by().values("customer").annotate(**firsts)


def _converted(i: int, window_days: int | None) -> Q:
    """The customers of a first_entries row who converted from step i to step i + 1 (within the window if any)."""
    if window_days is None:
        return Q(**{f"first_{i + 1}__isnull": False})
    # A difference of timestamps, compared as a duration: exact on both databases (SQLite computes it in whole
    # microseconds), where fractional days would put a move of exactly N days on either side of the boundary.
    return Q(**{f"first_{i + 1}__isnull": False, f"gap_{i}__lte": timedelta(days=window_days)})


def _with_gaps(firsts: QuerySet, steps: int, window_days: int | None) -> QuerySet:
    """first_entries rows with `gap_<i>` = first_<i+1> − first_<i> (a duration; NULL when either is), which only
    a conversion window needs."""
    if window_days is None:
        return firsts
    gaps = {
        f"gap_{i}": ExpressionWrapper(F(f"first_{i + 1}") - F(f"first_{i}"), output_field=DurationField())
        for i in range(steps - 1)
    }
    return firsts.annotate(**gaps) if gaps else firsts


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def funnel_compute(
    *,
    model: LifecycleModel,
    filters: MetricFilters,
    targets: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> FunnelResult:
    """The funnel of `model` as of `filters.as_of`: reached, conversion and drop-off per funnel step. Two queries.

    `targets` maps a stage key to (goal, benchmark) for that stage's conversion to the next step; a step whose
    conversion is lower is flagged `below_goal` / `below_benchmark`. The step with the highest drop-off rate is
    flagged `biggest_drop_off` (the earliest on a tie; no step when nobody dropped off or nobody is counted).
    With `filters.window_days` = N, a step only counts as converted when the customer first entered the next
    step (or a later one) within N days of first entering this one (or a later one); reached() is unchanged.

    Result: FunnelResult; the last step's converted / conversion / drop-off are null, and so are rates whose step
    nobody reached.
    """
    stages = funnel_stages(model=model)
    window = filters.window_days
    counts: dict[str, int] = {"customers": 0}
    if stages:
        firsts = _with_gaps(first_entries(model=model, filters=filters, stages=stages), len(stages), window)
        aggregates: dict[str, Any] = {"customers": Count("customer")}
        for i in range(len(stages)):
            aggregates[f"reached_{i}"] = Count(f"first_{i}")
            if i + 1 < len(stages):
                aggregates[f"converted_{i}"] = Count(Case(When(_converted(i, window), then=1)))
        counts = {name: value or 0 for name, value in firsts.aggregate(**aggregates).items()}

    targets = targets or {}
    steps: list[FunnelStep] = []
    for i, stage in enumerate(stages):
        reached = counts[f"reached_{i}"]
        goal, benchmark = targets.get(stage.key, (None, None))
        step: FunnelStep = {
            "stage": stage.key,
            "name": stage.name_en,
            "name_de": stage.name_de,
            "position": stage.position,
            "reached": reached,
            "converted": None,
            "conversion": None,
            "drop_off": None,
            "drop_off_rate": None,
            "goal": goal,
            "benchmark": benchmark,
            "below_goal": False,
            "below_benchmark": False,
            "biggest_drop_off": False,
        }
        if i + 1 < len(stages):
            converted = counts[f"converted_{i}"]
            conversion = _rate(converted, reached)
            step.update(
                converted=converted,
                conversion=conversion,
                drop_off=reached - converted,
                drop_off_rate=None if conversion is None else 1 - conversion,
                below_goal=conversion is not None and goal is not None and conversion < goal,
                below_benchmark=conversion is not None and benchmark is not None and conversion < benchmark,
            )
        steps.append(step)

    rates = [(step["drop_off_rate"], i) for i, step in enumerate(steps) if step["drop_off_rate"]]
    if rates:
        # max() keeps the first of equal rates: ties go to the earliest step.
        steps[max(rates, key=lambda rate_index: rate_index[0])[1]]["biggest_drop_off"] = True

    return {
        "model": model.key,
        "as_of": filters.as_of.isoformat(),
        "filters": filters.as_json(),
        "window_days": window,
        "customers": counts["customers"],
        "steps": steps,
    }


def funnel_customers(
    *, model: LifecycleModel, filters: MetricFilters, stage_key: str, outcome: str
) -> QuerySet[Customer]:
    """The customers behind one funnel count: those who `reached` the step of `stage_key`, `converted` from it to
    the next step (honouring `filters.window_days`), or `dropped` (reached it but did not convert).

    Raises ValueError for an unknown outcome, a stage that is not a funnel stage of the model, or `converted` /
    `dropped` on the last step (which has no next step). The queryset is lazy: one query when evaluated.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}.")
    stages = funnel_stages(model=model)
    keys = [stage.key for stage in stages]
    if stage_key not in keys:
        raise ValueError(f"{stage_key!r} is not a funnel stage of {model.key!r}; funnel stages: {', '.join(keys)}.")
    i = keys.index(stage_key)
    if outcome != "reached" and i + 1 == len(stages):
        raise ValueError(f"{stage_key!r} is the last funnel step: nobody converts from it or drops off after it.")

    firsts = _with_gaps(first_entries(model=model, filters=filters, stages=stages), len(stages), filters.window_days)
    reached = Q(**{f"first_{i}__isnull": False})
    condition = {
        "reached": reached,
        "converted": _converted(i, filters.window_days),
        "dropped": reached & ~_converted(i, filters.window_days),
    }[outcome]
    return Customer.objects.filter(pk__in=firsts.filter(condition).values("customer"))
