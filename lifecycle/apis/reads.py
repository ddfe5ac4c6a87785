"""Lifecycle reads and runs: models, the pipeline, customers and their transitions, runs, reclassify.

One view per operation. Errors in the one shape of clm.base.api_errors (docs/API.md). Every endpoint runs a fixed
number of queries (tests/lifecycle/test_api_lifecycle.py asserts the bounds).
"""

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api import CanRead, CanWrite
from clm.base.api_errors import Conflict, error_responses
from lifecycle.apis.common import (
    BilingualStageSerializer,
    CustomerCursorPagination,
    MomentField,
    StageSerializer,
    customer_not_found,
    model_not_found,
    model_or_error,
    paginated_response,
)
from lifecycle.apis.ingest import ingest_api
from lifecycle.ingest_kinds import CUSTOMERS
from lifecycle.models import ConsentState, RunKind
from lifecycle.selectors import (
    classification_run_get,
    customer_current_stages,
    customer_get,
    customer_list,
    customer_transitions,
    lifecycle_model_get,
    lifecycle_model_list,
    model_pipeline,
    stage_get,
    stage_keys,
)
from lifecycle.services import classification_run_start
from lifecycle.tasks import classification_run_enqueue

_KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model's key")
_EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The shop's id of the customer"
)


class LifecycleModelListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ModelStageSerializer(BilingualStageSerializer):
            description = serializers.CharField()
            colour = serializers.CharField()

            class Meta:
                ref_name = "LifecycleModelStage"
                fields = ("key", "name", "name_de", "description", "colour", "kind", "position")

        key = serializers.CharField()
        name = serializers.CharField(source="name_en")
        name_de = serializers.CharField()
        description = serializers.CharField()
        is_default = serializers.BooleanField()
        active = serializers.BooleanField()
        fallback_stage = serializers.CharField(source="fallback_stage.key", allow_null=True)
        stages = ModelStageSerializer(many=True)

        class Meta:
            ref_name = "LifecycleModel"

    @extend_schema(
        operation_id="models_list",
        summary="Lifecycle models with their stages",
        responses={200: OutputSerializer(many=True)},
        tags=["lifecycle"],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(lifecycle_model_list(), many=True).data)


class LifecycleModelPipelineApi(APIView):
    class InputSerializer(serializers.Serializer):
        as_of = MomentField(
            day_end=True,
            required=False,
            help_text="A date (its end, UTC) or date-time in the past: counts from the stage history as of then. "
            "Omitted: the current stages.",
        )

    class OutputSerializer(serializers.Serializer):
        class PipelineStageSerializer(StageSerializer):
            count = serializers.IntegerField()

            class Meta:
                ref_name = "PipelineStage"

        model = serializers.CharField()
        as_of = serializers.DateTimeField(allow_null=True, help_text="null: the current stages")
        stages = PipelineStageSerializer(many=True)

        class Meta:
            ref_name = "Pipeline"

    @extend_schema(
        operation_id="model_pipeline",
        summary="Customers per stage, now or as of a past date",
        description="Every stage of the model in funnel order, zero counts included. With `as_of`, each customer "
        "counts in the stage their last transition at or before then led to (customers without one are not "
        "counted); without, the current stages.",
        parameters=[_KEY_PARAMETER, InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 404)},
        tags=["lifecycle"],
    )
    def get(self, request: Request, key: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        as_of = params.validated_data.get("as_of")
        body = {"model": model.key, "as_of": as_of, "stages": model_pipeline(model=model, as_of=as_of)}
        return Response(self.OutputSerializer(body).data)


class CustomerConsentSerializer(serializers.Serializer):
    """Marketing consent per channel: the fields `POST customers/` accepts (state, since when, where given)."""

    email_consent = serializers.ChoiceField(choices=ConsentState.choices)
    email_consent_at = serializers.DateTimeField(allow_null=True)
    email_consent_source = serializers.CharField()
    sms_consent = serializers.ChoiceField(choices=ConsentState.choices)
    sms_consent_at = serializers.DateTimeField(allow_null=True)
    sms_consent_source = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF puts a base's fields first; these read better after the customer's own.
        fields = super().get_fields()
        consent = {name: fields.pop(name) for name in CustomerConsentSerializer._declared_fields}
        return {**fields, **consent}


class CustomerListApi(APIView):
    pagination_class = CustomerCursorPagination

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(required=False, help_text="A model's key; omitted: the default model")
        stage = serializers.CharField(required=False, help_text="Only customers currently in this stage (its key)")
        changed_since = MomentField(
            required=False, help_text="Only customers whose stage in the model changed at or after this date-time"
        )
        changed_before = MomentField(
            required=False, help_text="Only customers whose stage in the model changed before this date-time"
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            model = model_or_error(attrs.get("model"))
            stage = None
            if "stage" in attrs:
                stage = stage_get(model=model, key=attrs["stage"])
                if stage is None:
                    known = ", ".join(stage_keys(model=model))
                    raise serializers.ValidationError(
                        {"stage": [f"Unknown stage {attrs['stage']!r} in model {model.key!r}; known: {known}."]}
                    )
            since, before = attrs.get("changed_since"), attrs.get("changed_before")
            if since is not None and before is not None and before <= since:
                raise serializers.ValidationError(
                    {"changed_before": [f"changed_before ({before.isoformat()}) must be later than changed_since."]}
                )
            return {"model": model, "stage": stage, "changed_since": since, "changed_before": before}

    class OutputSerializer(CustomerConsentSerializer):
        external_id = serializers.CharField()
        email = serializers.CharField()
        name = serializers.CharField()
        first_seen_at = serializers.DateTimeField()
        acquisition_channel = serializers.CharField(source="acquisition_channel_key", allow_null=True)
        referred_by = serializers.CharField(source="referred_by_external_id", allow_null=True)
        stage = serializers.CharField(
            source="stage_key", allow_null=True, help_text="Current stage in the model; null: not classified yet"
        )
        since = serializers.DateTimeField(allow_null=True)

        class Meta:
            ref_name = "CustomerListItem"

    @extend_schema(
        operation_id="customers_list",
        summary="Customers with their current stage in one model",
        description="Cursor-paginated by customer id: follow `next` until it is null.",
        parameters=[InputSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400)},
        tags=["lifecycle"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        customers = customer_list(**params.validated_data)
        return paginated_response(
            view=self, request=request, queryset=customers, serializer_class=self.OutputSerializer
        )


class CustomersApi(CustomerListApi, ingest_api(CUSTOMERS)):  # type: ignore[misc]
    """`customers/`: GET lists (CustomerListApi, read scope), POST upserts (the ingestion, write scope)."""

    def get_permissions(self) -> list[BasePermission]:
        return [CanRead()] if self.request.method in SAFE_METHODS else [CanWrite()]


class CustomerDetailApi(APIView):
    class OutputSerializer(CustomerConsentSerializer):
        class CurrentStageSerializer(serializers.Serializer):
            # Where the customer is in one model (a stage itself is lifecycle.apis.common.StageSerializer's).
            model = serializers.CharField()
            stage = serializers.CharField(allow_null=True, help_text="null: not classified in this model yet")
            stage_name = serializers.CharField(allow_null=True)
            kind = serializers.CharField(allow_null=True, help_text="funnel or exit")
            since = serializers.DateTimeField(allow_null=True)

            class Meta:
                ref_name = "CustomerModelStage"

        external_id = serializers.CharField()
        email = serializers.CharField()
        name = serializers.CharField()
        first_seen_at = serializers.DateTimeField()
        acquisition_channel = serializers.CharField(source="acquisition_channel_key", allow_null=True)
        referred_by = serializers.CharField(source="referred_by_external_id", allow_null=True)
        stages = CurrentStageSerializer(
            source="stages_current", many=True, help_text="The current stage in every active model, default first"
        )

        class Meta:
            ref_name = "CustomerDetail"

    @extend_schema(
        operation_id="customer_detail",
        summary="One customer and their current stage in every active model",
        parameters=[_EXTERNAL_ID_PARAMETER],
        responses={200: OutputSerializer, **error_responses(404)},
        tags=["lifecycle"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise customer_not_found(external_id)
        # An attribute for the serializer's `stages` field, as an annotation would be.
        customer.stages_current = customer_current_stages(customer=customer)  # type: ignore[attr-defined]
        return Response(self.OutputSerializer(customer).data)


class CustomerTransitionListApi(APIView):
    # Not paginated: a customer changes stage a few times a year per model, so their whole history fits one
    # answer; the cap only bounds a pathological case, and then keeps the newest changes.
    LIMIT = 1000

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(required=False, help_text="Only this model's transitions; omitted: all models")

    class OutputSerializer(serializers.Serializer):
        class TransitionSerializer(serializers.Serializer):
            model = serializers.CharField(source="model_key")
            # `from` is a Python keyword: the field is declared through the class namespace.
            vars()["from"] = serializers.CharField(source="from_key", allow_null=True, help_text="null: first stage")
            to = serializers.CharField(source="to_key")
            at = serializers.DateTimeField()
            cause = serializers.CharField(help_text="event, periodic, backfill, rule_change or manual")
            run = serializers.IntegerField(source="run_id", allow_null=True, help_text="The classification run's id")

            class Meta:
                ref_name = "StageTransition"

        results = TransitionSerializer(many=True, help_text="Oldest first")
        truncated = serializers.BooleanField(help_text="true: only the newest 1000 transitions are listed")

        class Meta:
            ref_name = "StageTransitionList"

    @extend_schema(
        operation_id="customer_transitions",
        summary="One customer's stage changes, oldest first",
        description="The whole history up to 1000 transitions (the newest, when there are more).",
        parameters=[_EXTERNAL_ID_PARAMETER, InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 404)},
        tags=["lifecycle"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        model = model_or_error(params.validated_data["model"]) if "model" in params.validated_data else None
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise customer_not_found(external_id)
        transitions, truncated = customer_transitions(customer=customer, model=model, limit=self.LIMIT)
        return Response(self.OutputSerializer({"results": transitions, "truncated": truncated}).data)


class ClassificationRunDetailApi(APIView):
    permission_classes = [CanRead | CanWrite]  # a write-only key polls the runs it started

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        model = serializers.CharField(source="model.key")
        kind = serializers.CharField(help_text="full, periodic, rule_change, event or backfill")
        as_of = serializers.DateTimeField()
        started_at = serializers.DateTimeField()
        finished_at = serializers.DateTimeField(allow_null=True)
        customers_evaluated = serializers.IntegerField()
        transitions = serializers.IntegerField()
        status = serializers.CharField(help_text="running, completed or failed")
        error = serializers.CharField(help_text="Why a failed run failed; empty otherwise")

        class Meta:
            ref_name = "ClassificationRun"

    @extend_schema(
        operation_id="run_detail",
        summary="A classification run's state",
        responses={200: OutputSerializer, **error_responses(404)},
        tags=["lifecycle"],
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = classification_run_get(run_id=run_id)
        if run is None:
            raise NotFound(f"No classification run with id {run_id}.")
        return Response(self.OutputSerializer(run).data)


class LifecycleModelReclassifyApi(APIView):
    permission_classes = [CanWrite]

    @extend_schema(
        operation_id="model_reclassify",
        summary="Reclassify every customer in one model, on a worker",
        description="Creates a run (kind `full`, as of now) and queues it; poll `runs/{id}/` (also in the "
        "`Location` header) until its status is no longer `running`.",
        parameters=[_KEY_PARAMETER],
        request=None,
        responses={202: ClassificationRunDetailApi.OutputSerializer, **error_responses(404, 409)},
        tags=["lifecycle"],
    )
    def post(self, request: Request, key: str) -> Response:
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        if not model.active:
            raise Conflict(f"Model {key!r} is not active; activate it first.", code="model_inactive")
        if model.fallback_stage_id is None:
            raise Conflict(f"Model {key!r} has no fallback stage; set one first.", code="no_fallback_stage")
        run = classification_run_start(model=model, kind=RunKind.FULL)
        classification_run_enqueue(run.pk)
        location = request.build_absolute_uri(reverse("api-run-detail", kwargs={"run_id": run.pk}))
        return Response(
            ClassificationRunDetailApi.OutputSerializer(run).data,
            status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )
