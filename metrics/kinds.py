"""The metrics stored as snapshots: one registration each, from which the snapshot job (metrics.services), the API
endpoint and its schema (metrics.apis.results) derive.

A kind registers its name, whether it is computed per lifecycle model, its input (the DRF serializer of the filters
and parameters it takes, metrics.params), its result type (a TypedDict declared beside its compute function) and
the compute function; with them the parameters of the snapshots the hourly job stores, and the summary and
description of its endpoint.

A kind's result depends on (model, filters, params) only, so that triple (with the as-of day) keys its snapshot.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, get_type_hints

from campaigns.effectiveness import DEFAULT_WINDOW_DAYS, ChannelEffectivenessResult, channel_effectiveness_compute
from clm.base.days import day_end, day_start
from lifecycle.models import LifecycleModel
from metrics.activity import ActivityResult, activity_compute
from metrics.cac import CacResult, cac_compute
from metrics.clv import ClvFitError
from metrics.cohorts import ClvHistoricalResult, CohortsResult, cohort_retention_compute, historical_clv_compute
from metrics.filters import MetricFilters, period_default
from metrics.flows import FlowsResult, flows_compute
from metrics.funnel import FunnelResult, funnel_compute
from metrics.params import (
    ActivityInput,
    ClvAccuracyInput,
    CohortsInput,
    FiltersInput,
    MetricInput,
    PeriodInput,
    RatesInput,
    RfmInput,
    parameter_names,
)
from metrics.rates import RatesResult, rates_compute
from metrics.rfm import RfmResult, rfm_compute
from metrics.stage_time import TimeInStageResult, time_in_stage_compute
from metrics.targets import funnel_targets, rates_with_targets
from metrics.value import ClvAccuracyResult, clv_accuracy

Params = dict[str, Any]
ResultT = TypeVar("ResultT")


def _one_snapshot(as_of: datetime) -> list[Params]:
    return [{}]


@dataclass(frozen=True)
class MetricKind(Generic[ResultT]):
    name: str
    per_model: bool
    # The API's input: the filters and parameters the endpoint validates (None: no endpoint in the metrics API).
    input: type[MetricInput] | None
    result: type[ResultT]  # a TypedDict: the stored result, and its schema
    compute: Callable[[LifecycleModel | None, MetricFilters, Params], ResultT]
    # The parameters of the snapshots the hourly job stores as of a moment: what pages and the API ask for without
    # filters, so that they read a stored row.
    snapshots: Callable[[datetime], list[Params]] = _one_snapshot
    summary: str = ""
    description: str = ""
    # Errors of the data, not of the request, that the API answers as a 400 naming the input `data_error_input`.
    data_errors: tuple[type[Exception], ...] = ()
    data_error_input: str = ""

    def __post_init__(self) -> None:
        # The compute function is annotated with what it returns: the registered type must be that one.
        returns = get_type_hints(self.compute).get("return")
        if returns is not self.result:
            raise TypeError(f"The metric {self.name!r} registers {self.result} but its compute returns {returns}.")

    @property
    def param_names(self) -> tuple[str, ...]:
        """The inputs that are the kind's parameters (with the filters, its snapshot's key)."""
        return parameter_names(self.input) if self.input is not None else ()


def params_key(filters: MetricFilters, params: Params) -> str:
    """Canonical text of the filters (but as_of) and parameters."""
    values = json.loads(filters.key())
    values.update({name: value for name, value in params.items() if value is not None})
    return json.dumps(values, sort_keys=True, default=lambda value: value.isoformat())


def _per_model(model: LifecycleModel | None) -> LifecycleModel:
    if model is None:
        raise ValueError("This metric is computed per lifecycle model: pass one.")
    return model


def _funnel(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> FunnelResult:
    model = _per_model(model)
    return funnel_compute(model=model, filters=filters, targets=funnel_targets(model=model))


def _time_in_stage(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> TimeInStageResult:
    return time_in_stage_compute(model=_per_model(model), filters=filters)


def _flows(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> FlowsResult:
    start, end = day_start(params["start"]), day_end(params["end"])
    return flows_compute(model=_per_model(model), start=start, end=end, filters=filters)


def _rates(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> RatesResult:
    start, end = day_start(params["start"]), day_end(params["end"])
    return rates_with_targets(rates_compute(model=model, start=start, end=end, filters=filters))


def _period(as_of: datetime) -> list[Params]:
    start, end = period_default(as_of)
    return [{"start": start, "end": end}]


def _period_and_the_one_before(as_of: datetime) -> list[Params]:
    start, end = period_default(as_of)
    # the overview compares with the 30 days before
    return [{"start": start, "end": end}, {"start": start - timedelta(days=30), "end": end - timedelta(days=30)}]


def _cohorts(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> CohortsResult:
    return cohort_retention_compute(filters=filters, measure=params["measure"])


def _rfm(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> RfmResult:
    start = params.get("start")
    return rfm_compute(filters=filters, start=day_end(start) if start else None)


def _activity(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> ActivityResult:
    return activity_compute(filters=filters, interval=params["interval"])


def _cac(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> CacResult:
    return cac_compute(filters=filters)


def _clv_historical(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> ClvHistoricalResult:
    return historical_clv_compute(filters=filters)


def _clv_accuracy(model: LifecycleModel | None, filters: MetricFilters, params: Params) -> ClvAccuracyResult:
    holdout_end = params.get("holdout_end")
    return clv_accuracy(
        calibration_end=day_end(params["calibration_end"]),
        holdout_end=day_end(holdout_end) if holdout_end else None,
    )


def _channel_effectiveness(
    model: LifecycleModel | None, filters: MetricFilters, params: Params
) -> ChannelEffectivenessResult:
    return channel_effectiveness_compute(
        model=_per_model(model),
        start=day_start(params["start"]),
        end=day_end(params["end"]),
        window_days=params["window_days"],
        as_of=filters.as_of,
    )


def _effectiveness_period(as_of: datetime) -> list[Params]:
    start, _ = period_default(as_of, days=90)  # the channel plan page's default period
    return [{"start": start, "end": as_of.date(), "window_days": DEFAULT_WINDOW_DAYS}]


_KINDS: list[MetricKind[Any]] = [
    MetricKind(
        name="funnel",
        per_model=True,
        input=FiltersInput,
        result=FunnelResult,
        compute=_funnel,
        summary="Funnel: reached, conversion and drop-off per funnel step",
        description="reached(i) = customers who have ever been in funnel stage i or a later one by as_of; "
        "conversion i→i+1 = reached(i+1)/reached(i) (within `window_days` of entering i when given); the biggest "
        "drop-off and every step below its goal or benchmark are flagged.",
    ),
    MetricKind(
        name="time_in_stage",
        per_model=True,
        input=FiltersInput,
        result=TimeInStageResult,
        compute=_time_in_stage,
        summary="Time in stage and time to convert between funnel steps",
        description="Median, p75, p90 and a histogram of days per stage (completed stays), from the transition log.",
    ),
    MetricKind(
        name="flows",
        per_model=True,
        input=PeriodInput,
        result=FlowsResult,
        compute=_flows,
        snapshots=_period,
        summary="Flows: stage transitions from × to in a period",
        description="Counts of transitions with start ≤ day ≤ end (default: the 30 days ending as_of); a null "
        "`from` is a customer's first classification.",
    ),
    MetricKind(
        name="rates",
        per_model=True,
        input=RatesInput,
        result=RatesResult,
        compute=_rates,
        snapshots=_period_and_the_one_before,
        summary="Conversion, repeat purchase, retention, churn, reactivation and referral rates, NPS per stage",
        description="Each rate with its numerator, denominator, definition, goal and benchmark; period default: "
        "the 30 days ending as_of.",
    ),
    MetricKind(
        name="cohorts",
        per_model=False,
        input=CohortsInput,
        result=CohortsResult,
        compute=_cohorts,
        snapshots=lambda as_of: [{"measure": "share"}, {"measure": "revenue"}],
        summary="Cohort retention by month of first order (k = 0..23)",
        description="Cells not observable yet (after as_of) are null.",
    ),
    MetricKind(
        name="rfm",
        per_model=False,
        input=RfmInput,
        result=RfmResult,
        compute=_rfm,
        snapshots=lambda as_of: [{"start": as_of.date() - timedelta(days=90)}],  # the cohorts page's default
        summary="RFM scores and segments, and movement between segments",
        description="Quintile scores 1–5 among buyers as of the day; segments by the documented map.",
    ),
    MetricKind(
        name="activity",
        per_model=False,
        input=ActivityInput,
        result=ActivityResult,
        compute=_activity,
        snapshots=lambda as_of: [{"interval": "week"}, {"interval": "month"}],
        summary="Activity lifecycle: new, returning, resurrecting and dormant buyers per week or month",
        description="From completed orders up to as_of.",
    ),
    MetricKind(
        name="cac",
        per_model=False,
        input=FiltersInput,
        result=CacResult,
        compute=_cac,
        summary="Customer acquisition cost per channel and month, and CLV:CAC per channel",
        description="CAC = spend / new customers acquired through the channel (first completed order in the month).",
    ),
    MetricKind(
        name="clv_historical",
        per_model=False,
        input=FiltersInput,
        result=ClvHistoricalResult,
        compute=_clv_historical,
        summary="Historical CLV: revenue per customer by cohort and by acquisition channel",
        description="Completed-order revenue up to as_of per buyer, and the mean stored 365-day prediction of "
        "the buyers that have one.",
    ),
    MetricKind(
        name="clv_accuracy",
        per_model=False,
        input=ClvAccuracyInput,
        result=ClvAccuracyResult,
        compute=_clv_accuracy,
        snapshots=lambda as_of: [],  # computed on request only: it fits the model each time
        summary="How far to trust the CLV predictions: predicted vs actual purchases in a holdout period",
        description="Fits BG/NBD on the calibration period and compares per cohort (month of first purchase) and "
        "in total.",
        data_errors=(ClvFitError,),
        data_error_input="calibration_end",
    ),
    # Its endpoint is campaigns' (campaigns/apis/plans.py computes it live); the channel plans page and the stage
    # page read its snapshots.
    MetricKind(
        name="channel_effectiveness",
        per_model=True,
        input=None,
        result=ChannelEffectivenessResult,
        compute=_channel_effectiveness,
        snapshots=_effectiveness_period,
    ),
]
KINDS: dict[str, MetricKind[Any]] = {kind.name: kind for kind in _KINDS}
