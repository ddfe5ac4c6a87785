"""The metrics that are stored as snapshots: each kind's compute function and the parameters it takes.

A kind's result depends on (model, filters, params) only, so that triple (with the as-of day) keys its snapshot.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from clm.base.days import day_end, day_start
from lifecycle.models import LifecycleModel
from metrics.filters import MetricFilters

Compute = Callable[[LifecycleModel | None, MetricFilters, dict[str, Any]], dict]


@dataclass(frozen=True)
class MetricKind:
    name: str
    per_model: bool
    compute: Compute


def period_default(as_of: datetime, days: int = 30) -> tuple[date, date]:
    """The `days` whole days ending on as_of's day: the default period of flows and rates."""
    return as_of.date() - timedelta(days=days - 1), as_of.date()


def params_key(filters: MetricFilters, params: dict[str, Any]) -> str:
    """Canonical text of the filters (but as_of) and parameters."""
    values = json.loads(filters.key())
    values.update({name: value for name, value in params.items() if value is not None})
    return json.dumps(values, sort_keys=True, default=lambda value: value.isoformat())


def _funnel(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.funnel import funnel_compute
    from metrics.targets import funnel_targets

    return funnel_compute(model=model, filters=filters, targets=funnel_targets(model=model))


def _time_in_stage(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.stage_time import time_in_stage_compute

    return time_in_stage_compute(model=model, filters=filters)


def _flows(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.flows import flows_compute

    return flows_compute(model=model, start=day_start(params["start"]), end=day_end(params["end"]), filters=filters)


def _rates(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.rates import rates_compute
    from metrics.targets import rates_with_targets

    result = rates_compute(model=model, start=day_start(params["start"]), end=day_end(params["end"]), filters=filters)
    return rates_with_targets(result)


def _cohorts(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.cohorts import cohort_retention_compute

    return cohort_retention_compute(filters=filters, measure=params["measure"])


def _rfm(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.rfm import rfm_compute

    start = params.get("start")
    return rfm_compute(filters=filters, start=day_end(start) if start else None)


def _activity(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.activity import activity_compute

    return activity_compute(filters=filters, interval=params["interval"])


def _cac(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.cac import cac_compute

    return cac_compute(filters=filters)


def _clv_historical(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.cohorts import historical_clv_compute

    return historical_clv_compute(filters=filters)


def _clv_accuracy(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from metrics.value import clv_accuracy

    holdout_end = params.get("holdout_end")
    return clv_accuracy(
        calibration_end=day_end(params["calibration_end"]),
        holdout_end=day_end(holdout_end) if holdout_end else None,
    )


def _channel_effectiveness(model: LifecycleModel | None, filters: MetricFilters, params: dict[str, Any]) -> dict:
    from campaigns.effectiveness import channel_effectiveness_compute

    return channel_effectiveness_compute(
        model=model,
        start=day_start(params["start"]),
        end=day_end(params["end"]),
        window_days=params["window_days"],
        as_of=filters.as_of,
    )


KINDS: dict[str, MetricKind] = {
    kind.name: kind
    for kind in [
        MetricKind("funnel", True, _funnel),
        MetricKind("time_in_stage", True, _time_in_stage),
        MetricKind("flows", True, _flows),
        MetricKind("rates", True, _rates),
        MetricKind("cohorts", False, _cohorts),
        MetricKind("rfm", False, _rfm),
        MetricKind("activity", False, _activity),
        MetricKind("cac", False, _cac),
        MetricKind("clv_historical", False, _clv_historical),
        MetricKind("clv_accuracy", False, _clv_accuracy),
        MetricKind("channel_effectiveness", True, _channel_effectiveness),
    ]
}
