"""Metrics API (read scope): every metric of SPEC §4–5 with the common filters, and the customers behind each count.

A metric answers from its stored snapshot when one is fresh, else it is computed now and stored for the next
request; either way the body says when (`computed_at`) and how (`source`). Errors: 400 `{"<parameter>":
["message"]}` for bad input, 404 `{"detail"}` for an unknown model or customer.
"""

from datetime import date, timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api_errors import error_responses
from clm.base.days import day_end, day_start
from clm.base.exports import csv_stream_response
from lifecycle.apis.common import (
    CustomerCursorPagination,
    customer_not_found,
    model_not_found,
    model_or_error,
    paginated_response,
)
from lifecycle.models import Channel, Customer, LifecycleModel
from lifecycle.selectors import customer_get, lifecycle_model_get, stage_get, stage_keys
from metrics.filters import MetricFilters
from metrics.kinds import KINDS, period_default
from metrics.selectors import (
    clv_fit_latest,
    customer_value_get,
    metric_target_list,
    pipeline_series,
)
from metrics.services import metric_result

_MAX_DAYS = 3660
_METRIC = inline_serializer(
    "MetricResult",
    {
        "kind": serializers.CharField(),
        "model": serializers.CharField(allow_null=True),
        "as_of": serializers.DateField(),
        "filters": serializers.DictField(),
        "computed_at": serializers.DateTimeField(),
        "source": serializers.ChoiceField(
            choices=["snapshot", "computed"], help_text="snapshot: a stored result; computed: computed for this request"
        ),
        "result": serializers.DictField(),
    },
)
_KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model's key")


class FiltersInput(serializers.Serializer):
    """The filters every metric accepts (SPEC §4)."""

    as_of = serializers.DateField(
        required=False, help_text="The day the metric is computed as of (its end, UTC); default today"
    )
    cohort_start = serializers.DateField(required=False, help_text="Only customers first seen on or after this day")
    cohort_end = serializers.DateField(required=False, help_text="Only customers first seen on or before this day")
    channel = serializers.SlugField(required=False, help_text="Only customers acquired through this channel (its key)")
    window_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Funnel: a step counts only within N days of the previous",
    )
    export = serializers.ChoiceField(
        choices=["csv"], required=False, help_text="Customer lists only: `csv` streams every customer as a CSV file"
    )

    def validate_as_of(self, value: date) -> date:
        if value > timezone.now().date() + timedelta(days=1):
            raise serializers.ValidationError(f"{value.isoformat()} is in the future.")
        return value

    def validate_channel(self, value: str) -> str:
        if not Channel.objects.filter(key=value).exists():
            known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
            raise serializers.ValidationError(f"Unknown channel {value!r}; known: {known}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("cohort_start"), attrs.get("cohort_end")
        if start and end and start > end:
            raise serializers.ValidationError(
                {"cohort_end": [f"cohort_end ({end.isoformat()}) is before cohort_start ({start.isoformat()})."]}
            )
        return attrs

    def filters(self) -> MetricFilters:
        data = self.validated_data
        return MetricFilters(
            as_of=day_end(data.get("as_of") or timezone.now().date()),
            cohort_start=data.get("cohort_start"),
            cohort_end=data.get("cohort_end"),
            channel=data.get("channel"),
            window_days=data.get("window_days"),
        )


class PeriodInput(FiltersInput):
    start = serializers.DateField(required=False, help_text="First day of the period; default 29 days before `end`")
    end = serializers.DateField(required=False, help_text="Last day of the period (inclusive); default as_of")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        as_of = attrs.get("as_of") or timezone.now().date()
        default_start, _ = period_default(day_end(attrs.get("end") or as_of))
        start, end = attrs.get("start") or default_start, attrs.get("end") or as_of
        if start > end:
            raise serializers.ValidationError(
                {"end": [f"end ({end.isoformat()}) is before start ({start.isoformat()})."]}
            )
        if (end - start).days > _MAX_DAYS:
            raise serializers.ValidationError({"start": [f"A period spans at most {_MAX_DAYS} days."]})
        if start > as_of:  # the metrics read the history up to as_of: a period after it has no data yet
            raise serializers.ValidationError(
                {"start": [f"The period starts ({start.isoformat()}) after as_of ({as_of.isoformat()})."]}
            )
        attrs["start"], attrs["end"] = start, end
        return attrs


def _input(serializer_class: type[FiltersInput], request: Request) -> FiltersInput:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params


def _metric_response(*, kind: str, model: LifecycleModel | None, filters: MetricFilters, params: dict) -> Response:
    snapshot, computed = metric_result(kind=kind, model=model, filters=filters, params=params)
    return Response(
        {
            "kind": kind,
            "model": model.key if model is not None else None,
            "as_of": snapshot.as_of,
            "filters": snapshot.filters,
            "computed_at": snapshot.computed_at,
            "source": "computed" if computed else "snapshot",
            "result": snapshot.result,
        }
    )


def _model_param(request: Request) -> LifecycleModel:
    """`?model=` or the default model (for metrics not under models/{key}/)."""
    return model_or_error(request.query_params.get("model"))


class MetricApi(APIView):
    """One metric of metrics.kinds: validate the filters and the kind's parameters, answer from the snapshot when
    fresh, else compute it. Under models/{key}/ the model is the path's; other per-model metrics take ?model=."""

    kind: str
    input_class: type[FiltersInput] = FiltersInput
    param_names: tuple[str, ...] = ()  # validated inputs that are the metric's parameters (part of its key)

    def get(self, request: Request, key: str | None = None) -> Response:
        params = _input(self.input_class, request)
        if key is not None:
            model = lifecycle_model_get(key=key)
            if model is None:
                raise model_not_found(key)
        else:
            model = _model_param(request) if KINDS[self.kind].per_model else None
        data = params.validated_data
        metric_params = {name: data[name] for name in self.param_names if data.get(name) is not None}
        return _metric_response(kind=self.kind, model=model, filters=params.filters(), params=metric_params)


# --- customer lists behind the counts -------------------------------------------------------------


class CustomerItem(serializers.Serializer):
    external_id = serializers.CharField()
    email = serializers.CharField()
    name = serializers.CharField()
    first_seen_at = serializers.DateTimeField()
    acquisition_channel = serializers.CharField(source="acquisition_channel_key", allow_null=True)

    class Meta:
        ref_name = "MetricCustomer"


_CSV_FIELDS = ["external_id", "email", "name", "first_seen_at", "acquisition_channel_key"]
_CSV_HEADER = ["external_id", "email", "name", "first_seen_at", "acquisition_channel"]


class CustomerDrillDownApi(APIView):
    """Base of the customer lists: cursor pages of CustomerItem, or with `?export=csv` a streamed CSV."""

    pagination_class = CustomerCursorPagination
    filename = "customers.csv"

    def respond(self, request: Request, customers: QuerySet[Customer], export: str | None) -> Response | HttpResponse:
        customers = customers.annotate(acquisition_channel_key=F("acquisition_channel__key"))
        if export == "csv":
            return csv_stream_response(
                queryset=customers.order_by("pk"), fields=_CSV_FIELDS, header=_CSV_HEADER, filename=self.filename
            )
        return paginated_response(view=self, request=request, queryset=customers, serializer_class=CustomerItem)


_CUSTOMERS_CSV = OpenApiResponse(OpenApiTypes.STR, description="With `export=csv`: every customer, header row first")


def _schema(
    operation_id: str,
    summary: str,
    description: str,
    inputs: type,
    responses: Any = _METRIC,
    path_key: bool = False,
    csv: bool = False,
) -> Any:
    """`csv`: a customer list, which `export=csv` answers as text/csv."""
    parameters = [_KEY_PARAMETER, inputs] if path_key else [inputs]
    ok = {(200, "application/json"): responses, (200, "text/csv"): _CUSTOMERS_CSV} if csv else {200: responses}
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        parameters=parameters,
        responses={**ok, **error_responses(400, 404)},
        tags=["metrics"],
    )


# --- per model: funnel, flows, time in stage, pipeline series ----------------------------------------


@extend_schema_view(
    get=_schema(
        "model_funnel",
        "Funnel: reached, conversion and drop-off per funnel step",
        "reached(i) = customers who have ever been in funnel stage i or a later one by as_of; conversion "
        "i→i+1 = reached(i+1)/reached(i) (within `window_days` of entering i when given); the biggest drop-off "
        "and every step below its goal or benchmark are flagged.",
        FiltersInput,
        path_key=True,
    )
)
class ModelFunnelApi(MetricApi):
    kind = "funnel"


class FunnelCustomersInput(FiltersInput):
    stage = serializers.SlugField(help_text="A funnel stage's key")
    outcome = serializers.ChoiceField(
        choices=["reached", "converted", "dropped"],
        default="reached",
        help_text="reached the step; converted to the next one; or dropped off after it",
    )


class ModelFunnelCustomersApi(CustomerDrillDownApi):
    filename = "funnel-customers.csv"

    @_schema(
        "model_funnel_customers",
        "The customers behind a funnel count",
        "Cursor-paginated (follow `next`); `?export=csv` streams them all.",
        FunnelCustomersInput,
        CustomerItem(many=True),
        csv=True,
        path_key=True,
    )
    def get(self, request: Request, key: str) -> Response | HttpResponse:
        from metrics.funnel import funnel_customers

        params = _input(FunnelCustomersInput, request)
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        stage_key = params.validated_data["stage"]
        if stage_get(model=model, key=stage_key) is None:
            known = ", ".join(stage_keys(model=model))
            raise serializers.ValidationError(
                {"stage": [f"Unknown stage {stage_key!r} in model {model.key!r}; known: {known}."]}
            )
        try:
            customers = funnel_customers(
                model=model, filters=params.filters(), stage_key=stage_key, outcome=params.validated_data["outcome"]
            )
        except ValueError as exc:  # an exit stage, or no next step to convert to
            raise serializers.ValidationError({"stage": [str(exc)]}) from exc
        return self.respond(request, customers, params.validated_data.get("export"))


@extend_schema_view(
    get=_schema(
        "model_flows",
        "Flows: stage transitions from × to in a period",
        "Counts of transitions with start ≤ day ≤ end (default: the 30 days ending as_of); a null `from` is a "
        "customer's first classification.",
        PeriodInput,
        path_key=True,
    )
)
class ModelFlowsApi(MetricApi):
    kind = "flows"
    input_class = PeriodInput
    param_names = ("start", "end")


class FlowCustomersInput(PeriodInput):
    from_stage = serializers.SlugField(required=False, help_text="The stage left; omitted: first classifications")
    to_stage = serializers.SlugField(help_text="The stage entered")


class ModelFlowCustomersApi(CustomerDrillDownApi):
    filename = "flow-customers.csv"

    @_schema(
        "model_flow_customers",
        "The customers behind a flow cell",
        "Distinct customers who moved from `from_stage` to `to_stage` in the period.",
        FlowCustomersInput,
        CustomerItem(many=True),
        csv=True,
        path_key=True,
    )
    def get(self, request: Request, key: str) -> Response | HttpResponse:
        from metrics.flows import flow_customers

        params = _input(FlowCustomersInput, request)
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        data = params.validated_data
        for field in ("from_stage", "to_stage"):
            if field in data and stage_get(model=model, key=data[field]) is None:
                known = ", ".join(stage_keys(model=model))
                raise serializers.ValidationError(
                    {field: [f"Unknown stage {data[field]!r} in model {model.key!r}; known: {known}."]}
                )
        customers = flow_customers(
            model=model,
            start=day_start(data["start"]),
            end=day_end(data["end"]),
            filters=params.filters(),
            from_key=data.get("from_stage"),
            to_key=data["to_stage"],
        )
        return self.respond(request, customers, data.get("export"))


@extend_schema_view(
    get=_schema(
        "model_time_in_stage",
        "Time in stage and time to convert between funnel steps",
        "Median, p75, p90 and a histogram of days per stage (completed stays), from the transition log.",
        FiltersInput,
        path_key=True,
    )
)
class ModelTimeInStageApi(MetricApi):
    kind = "time_in_stage"


class ModelPipelineHistoryApi(APIView):
    @_schema(
        "model_pipeline_history",
        "Customers per stage at the end of every day of a period",
        "From the daily pipeline series (rebuilt hourly from the transition log, imported history included).",
        PeriodInput,
        inline_serializer(
            "PipelineHistory",
            {
                "model": serializers.CharField(),
                "stages": serializers.ListField(child=serializers.CharField()),
                "computed_at": serializers.DateTimeField(allow_null=True),
                "days": serializers.ListField(child=serializers.DictField()),
            },
        ),
        path_key=True,
    )
    def get(self, request: Request, key: str) -> Response:
        params = _input(PeriodInput, request)
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        return Response(
            pipeline_series(model=model, start=params.validated_data["start"], end=params.validated_data["end"])
        )


# --- across models: rates, cohorts, RFM, activity, value ---------------------------------------------


class RatesInput(PeriodInput):
    model = serializers.SlugField(
        required=False, help_text="A model's key (churn, reactivation, NPS per stage); default: the default model"
    )


@extend_schema_view(
    get=_schema(
        "metrics_rates",
        "Conversion, repeat purchase, retention, churn, reactivation and referral rates, NPS per stage",
        "Each rate with its numerator, denominator, definition, goal and benchmark; period default: the 30 days "
        "ending as_of.",
        RatesInput,
    )
)
class RatesApi(MetricApi):
    kind = "rates"
    input_class = RatesInput
    param_names = ("start", "end")


class CohortsInput(FiltersInput):
    measure = serializers.ChoiceField(
        choices=["share", "revenue"],
        default="share",
        help_text="share with an order in month k, or cumulative revenue per customer",
    )


@extend_schema_view(
    get=_schema(
        "metrics_cohorts",
        "Cohort retention by month of first order (k = 0..23)",
        "Cells not observable yet (after as_of) are null.",
        CohortsInput,
    )
)
class CohortsApi(MetricApi):
    kind = "cohorts"
    input_class = CohortsInput
    param_names = ("measure",)


class CohortCustomersInput(FiltersInput):
    cohort = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", help_text="The cohort month, YYYY-MM")
    month = serializers.IntegerField(min_value=0, max_value=23, help_text="k: months after the first order")

    def validate_cohort(self, value: str) -> str:
        # Bounded like every date of the data (1970 to now), which also keeps month arithmetic within years 1..9999.
        if not "1970-01" <= value <= timezone.now().strftime("%Y-%m"):
            raise serializers.ValidationError(f"{value} is before 1970-01 or in the future.")
        return value


class CohortCustomersApi(CustomerDrillDownApi):
    filename = "cohort-customers.csv"

    @_schema(
        "metrics_cohort_customers",
        "The customers behind a cohort cell",
        "Customers of the cohort with a completed order in month k after their first.",
        CohortCustomersInput,
        CustomerItem(many=True),
        csv=True,
    )
    def get(self, request: Request) -> Response | HttpResponse:
        from metrics.cohorts import cohort_customers

        params = _input(CohortCustomersInput, request)
        data = params.validated_data
        customers = cohort_customers(filters=params.filters(), cohort=data["cohort"], month_offset=data["month"])
        return self.respond(request, customers, data.get("export"))


class RfmInput(FiltersInput):
    start = serializers.DateField(
        required=False, help_text="With it: how customers moved between segments from then to as_of"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        as_of = attrs.get("as_of") or timezone.now().date()
        if attrs.get("start") and attrs["start"] >= as_of:
            raise serializers.ValidationError(
                {"start": [f"start ({attrs['start'].isoformat()}) must be before as_of."]}
            )
        return attrs


@extend_schema_view(
    get=_schema(
        "metrics_rfm",
        "RFM scores and segments, and movement between segments",
        "Quintile scores 1–5 among buyers as of the day; segments by the documented map.",
        RfmInput,
    )
)
class RfmApi(MetricApi):
    kind = "rfm"
    input_class = RfmInput
    param_names = ("start",)


class RfmCustomersInput(FiltersInput):
    segment = serializers.CharField(help_text="A segment key, e.g. champions")


class RfmCustomersApi(CustomerDrillDownApi):
    filename = "rfm-customers.csv"

    @_schema(
        "metrics_rfm_customers",
        "The customers of an RFM segment",
        "As of the day.",
        RfmCustomersInput,
        CustomerItem(many=True),
        csv=True,
    )
    def get(self, request: Request) -> Response | HttpResponse:
        from metrics.rfm import SEGMENTS, rfm_customers

        params = _input(RfmCustomersInput, request)
        segment = params.validated_data["segment"]
        if segment not in SEGMENTS:
            raise serializers.ValidationError(
                {"segment": [f"Unknown segment {segment!r}; known: {', '.join(SEGMENTS)}."]}
            )
        customers = rfm_customers(filters=params.filters(), segment=segment)
        return self.respond(request, customers, params.validated_data.get("export"))


class ActivityInput(FiltersInput):
    interval = serializers.ChoiceField(choices=["week", "month"], default="week")


@extend_schema_view(
    get=_schema(
        "metrics_activity",
        "Activity lifecycle: new, returning, resurrecting and dormant buyers per week or month",
        "From completed orders up to as_of.",
        ActivityInput,
    )
)
class ActivityApi(MetricApi):
    kind = "activity"
    input_class = ActivityInput
    param_names = ("interval",)


class ActivityCustomersInput(ActivityInput):
    period = serializers.CharField(
        help_text="The period as in the activity result (week: its Monday YYYY-MM-DD; month: YYYY-MM)"
    )
    category = serializers.ChoiceField(choices=["new", "returning", "resurrecting", "dormant"])


class ActivityCustomersApi(CustomerDrillDownApi):
    filename = "activity-customers.csv"

    @_schema(
        "metrics_activity_customers",
        "The customers behind an activity count",
        "",
        ActivityCustomersInput,
        CustomerItem(many=True),
        csv=True,
    )
    def get(self, request: Request) -> Response | HttpResponse:
        from metrics.activity import activity_customers

        params = _input(ActivityCustomersInput, request)
        data = params.validated_data
        try:
            customers = activity_customers(
                filters=params.filters(), interval=data["interval"], period=data["period"], category=data["category"]
            )
        except ValueError as exc:
            raise serializers.ValidationError({"period": [str(exc)]}) from exc
        return self.respond(request, customers, data.get("export"))


@extend_schema_view(
    get=_schema(
        "metrics_cac",
        "Customer acquisition cost per channel and month, and CLV:CAC per channel",
        "CAC = spend / new customers acquired through the channel (first completed order in the month).",
        FiltersInput,
    )
)
class CacApi(MetricApi):
    kind = "cac"


@extend_schema_view(
    get=_schema(
        "metrics_clv_historical",
        "Historical CLV: revenue per customer by cohort and by acquisition channel",
        "",
        FiltersInput,
    )
)
class ClvHistoricalApi(MetricApi):
    kind = "clv_historical"


class ClvAccuracyInput(serializers.Serializer):
    calibration_end = serializers.DateField(help_text="Fit on the events up to this day; compare predictions after it")
    holdout_end = serializers.DateField(required=False, help_text="End of the holdout period; default the last order")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = timezone.now().date()
        if attrs["calibration_end"] >= today:
            raise serializers.ValidationError({"calibration_end": ["calibration_end must be in the past."]})
        holdout_end = attrs.get("holdout_end")
        if holdout_end and holdout_end <= attrs["calibration_end"]:
            raise serializers.ValidationError({"holdout_end": ["holdout_end must be after calibration_end."]})
        return attrs


class ClvAccuracyApi(APIView):
    @_schema(
        "metrics_clv_accuracy",
        "How far to trust the CLV predictions: predicted vs actual purchases in a holdout period",
        "Fits BG/NBD on the calibration period and compares per cohort (month of first purchase) and in total.",
        ClvAccuracyInput,
    )
    def get(self, request: Request) -> Response:
        from metrics.clv import ClvFitError

        params = ClvAccuracyInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = {key: value for key, value in params.validated_data.items() if value is not None}
        filters = MetricFilters(as_of=day_end(data["calibration_end"]))
        try:
            return _metric_response(kind="clv_accuracy", model=None, filters=filters, params=data)
        except ClvFitError as exc:
            raise serializers.ValidationError({"calibration_end": [str(exc)]}) from exc


_NOT_FITTED = "The CLV model has not been fitted yet: the nightly job fits it, or run `python manage.py fit_clv`."


class ClvApi(APIView):
    @extend_schema(
        operation_id="metrics_clv",
        summary="The fitted CLV model: BG/NBD and Gamma-Gamma parameters, fit date and sample size",
        responses={200: OpenApiTypes.OBJECT},
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        fit = clv_fit_latest()
        if fit is None:
            return Response({"status": "not_fitted", "detail": _NOT_FITTED})
        return Response(
            {
                "status": "fitted",
                "as_of": fit.as_of,
                "fitted_at": fit.fitted_at,
                "time_unit": "week",
                "customers": fit.customers,
                "repeat_customers": fit.repeat_customers,
                "duration_seconds": fit.duration_seconds,
                "bgnbd": {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b, "log_likelihood": fit.log_likelihood},
                "gamma_gamma": {"p": fit.p, "q": fit.q, "gamma": fit.gamma},
            }
        )


class CustomerValueApi(APIView):
    @extend_schema(
        operation_id="customer_value",
        summary="A customer's p_alive, expected purchases and expected spend (90 and 365 days)",
        parameters=[OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: OpenApiTypes.OBJECT, **error_responses(404)},
        tags=["metrics"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise customer_not_found(external_id)
        value = customer_value_get(customer_id=customer.pk)
        if value is None:
            fitted = clv_fit_latest() is not None
            return Response(
                {
                    "external_id": customer.external_id,
                    "status": "no_orders" if fitted else "not_fitted",
                    "detail": "The customer had no completed order when the model was fitted."
                    if fitted
                    else _NOT_FITTED,
                }
            )
        return Response(
            {
                "external_id": customer.external_id,
                "status": "fitted",
                "fitted_at": value.fit.fitted_at,
                "as_of": value.fit.as_of,
                "frequency": value.frequency,
                "recency_weeks": value.recency_weeks,
                "age_weeks": value.age_weeks,
                "monetary_value": value.monetary_value,
                "p_alive": value.p_alive,
                "expected_purchases_90d": value.expected_purchases_90d,
                "expected_purchases_365d": value.expected_purchases_365d,
                "expected_spend_90d": value.expected_spend_90d,
                "expected_spend_365d": value.expected_spend_365d,
            }
        )


class MetricTargetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        label = serializers.CharField()
        direction = serializers.CharField()
        benchmark = serializers.FloatField(allow_null=True)
        benchmark_source = serializers.CharField()
        goal = serializers.FloatField(allow_null=True)

        class Meta:
            ref_name = "MetricTarget"

    @extend_schema(
        operation_id="metrics_targets",
        summary="Benchmarks (with sources) and goals per metric",
        responses={200: OutputSerializer(many=True)},
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(metric_target_list(), many=True).data)
