"""The customers behind each count of the metrics (funnel, flows, cohorts, RFM, activity): cursor pages of them,
or with `?export=csv` all of them streamed as CSV. Each list is filtered exactly as its count is computed, so a
count equals the length of its list.
"""

from typing import Any

from django.db.models import F, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.days import day_end, day_start
from clm.base.exports import csv_stream_response
from lifecycle.apis.common import CustomerCursorPagination, paginated_response
from lifecycle.models import Customer, LifecycleModel
from lifecycle.selectors import stage_get, stage_keys
from metrics.activity import activity_customers
from metrics.apis.common import input_valid, operation_schema, path_model
from metrics.cohorts import cohort_customers
from metrics.flows import flow_customers
from metrics.funnel import funnel_customers
from metrics.params import ActivityInput, FiltersInput, PeriodInput
from metrics.rfm import SEGMENTS, rfm_customers


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


_ANSWERS = {
    (200, "application/json"): CustomerItem(many=True),
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.STR, description="With `export=csv`: every customer, header row first"
    ),
}


def _list_schema(
    operation_id: str, summary: str, description: str, inputs: type[serializers.Serializer], path_key: bool = False
) -> Any:
    """A customer list: cursor pages of CustomerItem, or with `export=csv` a CSV file."""
    return operation_schema(operation_id, summary, description, inputs, _ANSWERS, path_key=path_key)


class CustomerDrillDownApi(APIView):
    """Base of the customer lists: cursor pages of CustomerItem, or with `?export=csv` a streamed CSV."""

    pagination_class = CustomerCursorPagination
    filename = "customers.csv"

    def respond(
        self, request: Request, customers: QuerySet[Customer], export: str | None
    ) -> Response | StreamingHttpResponse:
        customers = customers.annotate(acquisition_channel_key=F("acquisition_channel__key"))
        if export == "csv":
            return csv_stream_response(
                queryset=customers.order_by("pk"), fields=_CSV_FIELDS, header=_CSV_HEADER, filename=self.filename
            )
        return paginated_response(view=self, request=request, queryset=customers, serializer_class=CustomerItem)


def _stage_check(model: LifecycleModel, field: str, stage_key: str) -> None:
    """A 400 on `field` when the model has no stage `stage_key`."""
    if stage_get(model=model, key=stage_key) is None:
        known = ", ".join(stage_keys(model=model))
        raise serializers.ValidationError(
            {field: [f"Unknown stage {stage_key!r} in model {model.key!r}; known: {known}."]}
        )


class FunnelCustomersInput(FiltersInput):
    stage = serializers.SlugField(help_text="A funnel stage's key")
    outcome = serializers.ChoiceField(
        choices=["reached", "converted", "dropped"],
        default="reached",
        help_text="reached the step; converted to the next one; or dropped off after it",
    )


class ModelFunnelCustomersApi(CustomerDrillDownApi):
    filename = "funnel-customers.csv"

    @_list_schema(
        "model_funnel_customers",
        "The customers behind a funnel count",
        "Cursor-paginated (follow `next`); `?export=csv` streams them all.",
        FunnelCustomersInput,
        path_key=True,
    )
    def get(self, request: Request, key: str) -> Response | StreamingHttpResponse:
        params = input_valid(FunnelCustomersInput, request)
        model = path_model(key)
        stage_key = params.validated_data["stage"]
        _stage_check(model, "stage", stage_key)
        try:
            customers = funnel_customers(
                model=model, filters=params.filters(), stage_key=stage_key, outcome=params.validated_data["outcome"]
            )
        except ValueError as exc:  # an exit stage, or no next step to convert to
            raise serializers.ValidationError({"stage": [str(exc)]}) from exc
        return self.respond(request, customers, params.validated_data.get("export"))


class FlowCustomersInput(PeriodInput):
    from_stage = serializers.SlugField(required=False, help_text="The stage left; omitted: first classifications")
    to_stage = serializers.SlugField(help_text="The stage entered")


class ModelFlowCustomersApi(CustomerDrillDownApi):
    filename = "flow-customers.csv"

    @_list_schema(
        "model_flow_customers",
        "The customers behind a flow cell",
        "Distinct customers who moved from `from_stage` to `to_stage` in the period.",
        FlowCustomersInput,
        path_key=True,
    )
    def get(self, request: Request, key: str) -> Response | StreamingHttpResponse:
        params = input_valid(FlowCustomersInput, request)
        model = path_model(key)
        data = params.validated_data
        for field in ("from_stage", "to_stage"):
            if field in data:
                _stage_check(model, field, data[field])
        customers = flow_customers(
            model=model,
            start=day_start(data["start"]),
            end=day_end(data["end"]),
            filters=params.filters(),
            from_key=data.get("from_stage"),
            to_key=data["to_stage"],
        )
        return self.respond(request, customers, data.get("export"))


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

    @_list_schema(
        "metrics_cohort_customers",
        "The customers behind a cohort cell",
        "Customers of the cohort with a completed order in month k after their first.",
        CohortCustomersInput,
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        params = input_valid(CohortCustomersInput, request)
        data = params.validated_data
        customers = cohort_customers(filters=params.filters(), cohort=data["cohort"], month_offset=data["month"])
        return self.respond(request, customers, data.get("export"))


class RfmCustomersInput(FiltersInput):
    segment = serializers.CharField(help_text="A segment key, e.g. champions")


class RfmCustomersApi(CustomerDrillDownApi):
    filename = "rfm-customers.csv"

    @_list_schema(
        "metrics_rfm_customers",
        "The customers of an RFM segment",
        "As of the day.",
        RfmCustomersInput,
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        params = input_valid(RfmCustomersInput, request)
        segment = params.validated_data["segment"]
        if segment not in SEGMENTS:
            raise serializers.ValidationError(
                {"segment": [f"Unknown segment {segment!r}; known: {', '.join(SEGMENTS)}."]}
            )
        customers = rfm_customers(filters=params.filters(), segment=segment)
        return self.respond(request, customers, params.validated_data.get("export"))


class ActivityCustomersInput(ActivityInput):
    period = serializers.CharField(
        help_text="The period as in the activity result (week: its Monday YYYY-MM-DD; month: YYYY-MM)"
    )
    category = serializers.ChoiceField(choices=["new", "returning", "resurrecting", "dormant"])


class ActivityCustomersApi(CustomerDrillDownApi):
    filename = "activity-customers.csv"

    @_list_schema(
        "metrics_activity_customers",
        "The customers behind an activity count",
        "",
        ActivityCustomersInput,
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        params = input_valid(ActivityCustomersInput, request)
        data = params.validated_data
        try:
            customers = activity_customers(
                filters=params.filters(), interval=data["interval"], period=data["period"], category=data["category"]
            )
        except ValueError as exc:
            raise serializers.ValidationError({"period": [str(exc)]}) from exc
        return self.respond(request, customers, data.get("export"))
