"""Benchmarks and goals (SPEC §4): read them for funnels and rates, and ship the documented defaults.

Defaults carry a benchmark only where a published source states one; everything else starts empty for the
retailer to fill in (an invented figure presented as sourced would mislead).
"""

from typing import Any

from lifecycle.models import LifecycleModel
from metrics.models import MetricTarget
from metrics.rates import RatesResult

RATE_LABELS = {
    "conversion_rate": "Conversion rate (leads → first-time customers)",
    "repeat_purchase_rate": "Repeat purchase rate",
    "retention_rate": "Retention rate",
    "churn_rate": "Churn rate",
    "reactivation_rate": "Reactivation rate",
    "referral_rate": "Referral rate",
    "nps": "Net Promoter Score",
}
LOWER_IS_BETTER = {"churn_rate"}

DEFAULT_BENCHMARKS: dict[str, tuple[float, str]] = {
    "repeat_purchase_rate": (
        0.28,
        "Metrilo, 'Retention rate' (survey of e-commerce stores by niche, average 28%), "
        "https://metrilo.com/glossary/retention-rate",
    ),
}


def conversion_metric(*, model_key: str, stage_key: str) -> str:
    """The target name of a funnel step's conversion (from this stage to the next funnel stage)."""
    return f"conversion:{model_key}:{stage_key}"


def metric_targets_ensure(**kwargs: Any) -> None:
    """Create the default rate targets that are missing; never overwrite an admin's values (post_migrate)."""
    for metric, label in RATE_LABELS.items():
        benchmark, source = DEFAULT_BENCHMARKS.get(metric, (None, ""))
        MetricTarget.objects.get_or_create(
            metric=metric,
            defaults={
                "label": label,
                "benchmark": benchmark,
                "benchmark_source": source,
                "direction": MetricTarget.Direction.LOWER
                if metric in LOWER_IS_BETTER
                else MetricTarget.Direction.HIGHER,
            },
        )


def funnel_targets(*, model: LifecycleModel) -> dict[str, tuple[float | None, float | None]]:
    """(goal, benchmark) of each funnel step's conversion that has a target, by the step's stage key."""
    prefix = conversion_metric(model_key=model.key, stage_key="")
    return {
        target.metric.removeprefix(prefix): (target.goal, target.benchmark)
        for target in MetricTarget.objects.filter(metric__startswith=prefix)
    }


def below_target(value: float | None, target: float | None, direction: str) -> bool:
    """Whether a value misses its target (a missing value or target misses nothing)."""
    if value is None or target is None:
        return False
    return value > target if direction == MetricTarget.Direction.LOWER else value < target


def rates_with_targets(result: RatesResult) -> RatesResult:
    """Each rate of a rates result with its goal, benchmark (and source) and whether it misses them."""
    targets = {target.metric: target for target in MetricTarget.objects.filter(metric__in=list(result["rates"]))}
    for name, rate in result["rates"].items():
        target = targets.get(name)
        direction = target.direction if target else MetricTarget.Direction.HIGHER
        rate.update(
            goal=target.goal if target else None,
            benchmark=target.benchmark if target else None,
            benchmark_source=target.benchmark_source if target else "",
            below_goal=below_target(rate.get("value"), target.goal if target else None, direction),
            below_benchmark=below_target(rate.get("value"), target.benchmark if target else None, direction),
        )
    return result
