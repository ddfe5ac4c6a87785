import re
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api import CanRead, CanWrite
from clm.base.api_errors import Conflict, InvalidBatch, batch_items, error_responses
from clm.base.days import day_end, day_start
from clm.base.idempotency import HEADER as IDEMPOTENCY_HEADER
from clm.base.idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from clm.base.idempotency import KEY_TTL, REPLAYED_HEADER, idempotent
from lifecycle.ingest import IngestKind, IngestRejected, records_ingest
from lifecycle.ingest_kinds import CUSTOMERS, FUTURE_TOLERANCE
from lifecycle.models import LifecycleModel, RunKind
from lifecycle.selectors import (
    classification_run_get,
    customer_current_stages,
    customer_get,
    customer_list,
    customer_transitions,
    lifecycle_model_default,
    lifecycle_model_get,
    lifecycle_model_keys,
    lifecycle_model_list,
    model_pipeline,
    stage_get,
    stage_keys,
)
from lifecycle.services import classification_run_start
from lifecycle.tasks import classification_run_enqueue, reclassify_customers_on_commit

_RESULT = inline_serializer(
    "IngestResult",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
        "results": inline_serializer(
            "IngestItemResult",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=["created", "updated", "unchanged"]),
                "id": serializers.IntegerField(),
                "key": serializers.DictField(),
            },
            many=True,
        ),
    },
)


class RecordsIngestApi(APIView):
    """Upsert one object or a list of up to CLM_INGEST_MAX_ITEMS; all or nothing."""

    kind: IngestKind
    permission_classes = [CanWrite]

    @idempotent
    def post(self, request: Request) -> Response:
        items = batch_items(request, limit=settings.CLM_INGEST_MAX_ITEMS)
        try:
            result = records_ingest(kind=self.kind, items=items)
        except IngestRejected as rejected:
            raise InvalidBatch(errors=[vars(error) for error in rejected.errors], items=len(items)) from None
        except IntegrityError:
            raise Conflict(
                "A concurrent request wrote the same records; nothing was written, retry.", code="concurrent_write"
            ) from None
        reclassify_customers_on_commit(result.touched_customer_ids)
        body = {
            "created": result.count("created"),
            "updated": result.count("updated"),
            "unchanged": result.count("unchanged"),
            "results": [vars(item) for item in result.items],
        }
        return Response(body, status.HTTP_201_CREATED if body["created"] else status.HTTP_200_OK)


def ingest_api(kind: IngestKind) -> type[RecordsIngestApi]:
    """The ingestion endpoint class of one kind, with its OpenAPI description."""
    schema = extend_schema(
        operation_id=f"{kind.name}_ingest",
        summary=f"Upsert {kind.name.replace('_', ' ')}",
        description=(
            f"Send one object or a list of up to {settings.CLM_INGEST_MAX_ITEMS}. The batch is validated whole: "
            "if any item is invalid nothing is written and every error is listed. Rows are matched by "
            f"{', '.join(kind.key_fields)}; resending an identical item reports it as unchanged."
        ),
        request=kind.serializer_class(many=True),
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="Optional, 1 to 255 visible ASCII characters (a UUID): resending the same request with "
                f"the same key within {KEY_TTL.total_seconds() / 3600:.0f} hours returns the first answer without "
                f"writing again (with `{REPLAYED_HEADER}: true`); the same key on a different request gets 422, "
                "while the first is still running 409.",
            )
        ],
        responses={200: _RESULT, 201: _RESULT, **error_responses(400, 409, 413, 422)},
        examples=[
            OpenApiExample(
                "errors",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "1 of 2 items are invalid; nothing was written.",
                    "code": "invalid",
                    "errors": [
                        {
                            "index": 1,
                            "field": "amount",
                            "message": "Ensure this value is greater than or equal to 0.",
                            "code": "min_value",
                        }
                    ],
                },
            )
        ],
        tags=["ingestion"],
    )

    # A fresh function per kind: extend_schema annotates the function object it decorates.
    def post(self: RecordsIngestApi, request: Request) -> Response:
        return RecordsIngestApi.post(self, request)

    name = f"{kind.name.title().replace('_', '')}IngestApi"
    return type(name, (RecordsIngestApi,), {"kind": kind, "post": schema(post)})


# --- lifecycle reads and runs ---------------------------------------------------------------------
#
# One view per operation. Errors in the one shape of clm.base.api_errors (docs/API.md).
# Every endpoint runs a fixed number of queries (tests/lifecycle/test_api_lifecycle.py asserts the bounds).

_DATE_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """A date (YYYY-MM-DD, UTC) or an ISO 8601 date-time; more than a day ahead of the server's clock is refused.

    A date stands for the start of that day, or with `day_end` for its end (so `as_of=2025-01-31` includes
    everything that happened on the 31st).
    """

    def __init__(self, *, day_end: bool = False, **kwargs: Any) -> None:
        self.day_end = day_end
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime:
        text = data.strip() if isinstance(data, str) else ""
        moment: datetime | None
        try:
            if _DATE_DAY.fullmatch(text):
                moment = (day_end if self.day_end else day_start)(date.fromisoformat(text))
            else:
                moment = parse_datetime(text) if text else None
        except ValueError:
            moment = None
        if moment is None:
            raise serializers.ValidationError(
                f"{data!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 date-time (e.g. 2025-01-31T12:00:00Z)."
            )
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        if moment > timezone.now() + FUTURE_TOLERANCE:
            raise serializers.ValidationError(f"{text} is in the future.")
        return moment

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


def model_or_error(key: str | None) -> LifecycleModel:
    """The named model, or the default one; a ValidationError on `model` naming the problem."""
    model = lifecycle_model_get(key=key) if key else lifecycle_model_default()
    if model is not None:
        return model
    known = ", ".join(lifecycle_model_keys()) or "none"
    if key:
        raise serializers.ValidationError({"model": [f"Unknown model {key!r}; known: {known}."]})
    raise serializers.ValidationError({"model": [f"There is no default model; name one (known: {known})."]})


def model_not_found(key: str) -> NotFound:
    known = ", ".join(lifecycle_model_keys()) or "none"
    return NotFound(f"No lifecycle model with key {key!r}; known: {known}.")


def customer_not_found(external_id: str) -> NotFound:
    return NotFound(f"No customer with external_id {external_id!r}.")


class CustomerCursorPagination(CursorPagination):
    """Cursor pages by customer id (unique, the primary key's index): stable while customers are added, the same
    cost on every page; ?page_size= up to 1000."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Any:
        # DRF answers a malformed cursor with 404, as if the list were gone; it is bad input.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError({self.cursor_query_param: ["Invalid cursor; follow `next`."]}) from None


def paginated_response(*, view: APIView, request: Request, queryset: Any, serializer_class: type) -> Response:
    paginator = view.pagination_class()  # type: ignore[attr-defined]  # the views that page declare it
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


_KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model's key")
_EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The shop's id of the customer"
)


class LifecycleModelListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class StageSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField(source="name_en")
            name_de = serializers.CharField()
            description = serializers.CharField()
            colour = serializers.CharField()
            kind = serializers.CharField(help_text="funnel or exit")
            position = serializers.IntegerField()

            class Meta:
                ref_name = "LifecycleModelStage"

        key = serializers.CharField()
        name = serializers.CharField(source="name_en")
        name_de = serializers.CharField()
        description = serializers.CharField()
        is_default = serializers.BooleanField()
        active = serializers.BooleanField()
        fallback_stage = serializers.CharField(source="fallback_stage.key", allow_null=True)
        stages = StageSerializer(many=True)

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
        class StageSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField()
            kind = serializers.CharField(help_text="funnel or exit")
            position = serializers.IntegerField()
            count = serializers.IntegerField()

            class Meta:
                ref_name = "PipelineStage"

        model = serializers.CharField()
        as_of = serializers.DateTimeField(allow_null=True, help_text="null: the current stages")
        stages = StageSerializer(many=True)

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

    class OutputSerializer(serializers.Serializer):
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
    class OutputSerializer(serializers.Serializer):
        class StageSerializer(serializers.Serializer):
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
        stages = StageSerializer(
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
