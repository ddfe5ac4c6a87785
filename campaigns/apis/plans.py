"""Campaigns API: channel plans and channel effectiveness (routes: campaigns/urls.py).

One view per operation; plans name their model, stage and channel by key. Errors: 400 `{"<field>": ["message"]}`
for bad input (nothing is written), 404 `{"detail"}` for an unknown plan. Reads need the read scope, changes the
write scope; every endpoint runs a fixed number of queries (tests/campaigns/test_plans.py asserts the bounds).
"""

from datetime import UTC, date, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.effectiveness import DEFAULT_WINDOW_DAYS, channel_effectiveness_compute
from campaigns.plans import (
    PLAN_FIELDS,
    ChannelPlanExists,
    channel_plan_create,
    channel_plan_get,
    channel_plan_matrix,
    channel_plan_update,
)
from clm.base.api import CanRead, CanWrite
from clm.base.api_errors import error_responses
from clm.base.days import day_end, day_start
from lifecycle.apis.common import BilingualStageSerializer, StageSerializer, model_or_error
from lifecycle.models import Channel, LifecycleModel, Stage

# The longest period and window the effectiveness endpoint accepts (a bound on the work of one request).
MAX_PERIOD_DAYS = 3 * 366
MAX_WINDOW_DAYS = 365
DEFAULT_PERIOD_DAYS = 90


def _stage_or_error(model: LifecycleModel, key: str) -> Stage:
    """The model's stage with this key; a 400 on `stage` that says when the key is a stage of another model."""
    stages = list(Stage.objects.filter(key=key).select_related("model").order_by("model__key"))
    for stage in stages:
        if stage.model_id == model.pk:
            return stage
    known = ", ".join(Stage.objects.filter(model=model).order_by("position", "pk").values_list("key", flat=True))
    if stages:
        others = ", ".join(repr(stage.model.key) for stage in stages)
        message = (
            f"Stage {key!r} is a stage of model {others}, not of {model.key!r}: a plan's stage must belong to the "
            f"plan's model. Stages of {model.key!r}: {known}."
        )
    else:
        message = f"Unknown stage {key!r} in model {model.key!r}; known: {known}."
    raise serializers.ValidationError({"stage": [message]})


def _channel_or_error(key: str) -> Channel:
    channel = Channel.objects.filter(key=key).first()
    if channel is None:
        known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
        raise serializers.ValidationError({"channel": [f"Unknown channel {key!r}; known: {known}."]})
    return channel


def _unknown_fields_check(serializer: serializers.Serializer, extra: tuple[str, ...] = ()) -> None:
    """DRF ignores keys a serializer does not declare; a misspelt field would be lost silently, so refuse it."""
    data = serializer.initial_data
    if not isinstance(data, dict):
        return
    allowed = set(serializer.fields) | set(extra)
    errors = {
        name: [f"Unknown field; allowed: {', '.join(serializer.fields)}."] for name in data if name not in allowed
    }
    if errors:
        raise serializers.ValidationError(errors)


def _audit_context(request: Request) -> dict[str, Any]:
    """Who made the change, for the plan's history: the person, or the API key's name in the reason."""
    user = request.user
    api_key = getattr(user, "api_key", None)
    return {"user": user, "reason": f"API, key {api_key.prefix}" if api_key is not None else "API"}


class PlanOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="stage.model.key")
    stage = serializers.CharField(source="stage.key")
    channel = serializers.CharField(source="channel.key")
    objective = serializers.CharField()
    strategy = serializers.CharField()
    content = serializers.CharField(help_text="Content / offer")
    kpi = serializers.CharField(help_text="e.g. repeat purchase rate (%)")
    kpi_target = serializers.FloatField(allow_null=True, help_text="The KPI's target value, e.g. 30")
    owner = serializers.CharField()
    active = serializers.BooleanField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ChannelPlan"


class _PlanFieldsSerializer(serializers.Serializer):
    """The fields a marketer fills in (shared by create and update)."""

    objective = serializers.CharField(max_length=300, help_text="What this channel should achieve for this stage")
    strategy = serializers.CharField(required=False, allow_blank=True)
    content = serializers.CharField(required=False, allow_blank=True, help_text="Content / offer")
    kpi = serializers.CharField(required=False, allow_blank=True, max_length=200)
    kpi_target = serializers.DecimalField(
        max_digits=12, decimal_places=4, required=False, allow_null=True, help_text="A number, e.g. 30"
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=100)
    active = serializers.BooleanField(required=False)


class ChannelPlanMatrixApi(APIView):
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(required=False, help_text="A model's key; omitted: the default model")

    class OutputSerializer(serializers.Serializer):
        class ChannelSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField(source="name_en")
            name_de = serializers.CharField()

            class Meta:
                ref_name = "PlanMatrixChannel"

        class RowSerializer(serializers.Serializer):
            class CellSerializer(serializers.Serializer):
                channel = serializers.CharField()
                plan = PlanOutputSerializer(allow_null=True)

                class Meta:
                    ref_name = "PlanMatrixCell"

            stage = serializers.CharField()
            cells = CellSerializer(many=True, help_text="One per channel column, in column order")

            class Meta:
                ref_name = "PlanMatrixRow"

        model = serializers.CharField()
        stages = BilingualStageSerializer(many=True, help_text="The rows: every stage in funnel order")
        channels = ChannelSerializer(many=True, help_text="The columns: the active channels")
        rows = RowSerializer(many=True)
        plans = PlanOutputSerializer(many=True, help_text="Every plan of the model (inactive channels' too)")

        class Meta:
            ref_name = "PlanMatrix"

    @extend_schema(
        operation_id="channel_plans_matrix",
        summary="The channel plan matrix of a model (stages × channels) and its plans as a list",
        description="Rows: every stage of the model in funnel order; columns: the active channels; each cell the "
        "plan or null. `plans` lists every plan of the model, including those of channels deactivated since.",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400)},
        tags=["campaigns"],
    )
    def get(self, request: Request) -> Response:
        params = ChannelPlanMatrixApi.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        model = model_or_error(params.validated_data.get("model"))
        matrix = channel_plan_matrix(model=model)
        channels = matrix["channels"]
        body = {
            "model": model.key,
            "stages": matrix["stages"],
            "channels": channels,
            "rows": [
                {
                    "stage": row.stage.key,
                    "cells": [{"channel": c.key, "plan": plan} for c, plan in zip(channels, row.cells, strict=True)],
                }
                for row in matrix["rows"]
            ],
            "plans": matrix["plans"],
        }
        return Response(ChannelPlanMatrixApi.OutputSerializer(body).data)


class ChannelPlanCreateApi(APIView):
    permission_classes = [CanWrite]

    class InputSerializer(_PlanFieldsSerializer):
        model = serializers.CharField(help_text="The model's key")
        stage = serializers.CharField(help_text="The key of a stage of that model")
        channel = serializers.CharField(help_text="The channel's key")

        class Meta:
            ref_name = "ChannelPlanCreate"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            _unknown_fields_check(self)
            model = model_or_error(attrs.pop("model"))
            attrs["stage"] = _stage_or_error(model, attrs["stage"])
            attrs["channel"] = _channel_or_error(attrs["channel"])
            attrs["model"] = model
            return attrs

    @extend_schema(
        operation_id="channel_plan_create",
        summary="Create the plan of one stage × channel cell",
        description="400 when the cell already has a plan: change that one with PATCH (its id is in the message).",
        request=InputSerializer,
        responses={201: PlanOutputSerializer, **error_responses(400)},
        examples=[
            OpenApiExample(
                "plan",
                request_only=True,
                value={
                    "model": "status",
                    "stage": "active",
                    "channel": "email",
                    "objective": "Keep active customers buying",
                    "kpi": "repeat purchase rate (%)",
                    "kpi_target": 30,
                    "owner": "CRM team",
                },
            )
        ],
        tags=["campaigns"],
    )
    def post(self, request: Request) -> Response:
        payload = ChannelPlanCreateApi.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        cell = {name: values.pop(name) for name in ("model", "stage", "channel")}
        try:
            plan = channel_plan_create(**cell, **_audit_context(request), **values)
        except ChannelPlanExists as exists:
            url = reverse("api-channel-plan-update", kwargs={"plan_id": exists.plan.pk})
            message = (
                f"Stage {exists.plan.stage.key!r} × channel {exists.plan.channel.key!r} already has a plan "
                f"(id {exists.plan.pk}); change it with PATCH {url}."
            )
            raise ValidationError({"channel": [ErrorDetail(message, code="plan_exists")]}) from None
        location = request.build_absolute_uri(reverse("api-channel-plan-update", kwargs={"plan_id": plan.pk}))
        return Response(PlanOutputSerializer(plan).data, status.HTTP_201_CREATED, headers={"Location": location})


class ChannelPlansApi(ChannelPlanMatrixApi, ChannelPlanCreateApi):
    """`campaigns/plans/`: GET reads the matrix (read scope), POST creates a plan (write scope)."""

    def get_permissions(self) -> list[BasePermission]:
        return [CanRead()] if self.request.method in SAFE_METHODS else [CanWrite()]


class ChannelPlanUpdateApi(APIView):
    permission_classes = [CanWrite]

    class InputSerializer(_PlanFieldsSerializer):
        objective = serializers.CharField(max_length=300, required=False)

        class Meta:
            ref_name = "ChannelPlanUpdate"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            fixed = {"model", "stage", "channel"} & set(
                self.initial_data if isinstance(self.initial_data, dict) else ()
            )
            if fixed:
                raise serializers.ValidationError(
                    {
                        name: ["A plan's cell cannot change; create a plan for the other cell and deactivate this one."]
                        for name in sorted(fixed)
                    }
                )
            _unknown_fields_check(self)
            return attrs

    @extend_schema(
        operation_id="channel_plan_update",
        summary="Change some fields of a plan",
        description=f"Send only the fields to change ({', '.join(PLAN_FIELDS)}); the cell (model, stage, channel) "
        "is fixed. A change is kept in the plan's audit history.",
        parameters=[OpenApiParameter("plan_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The plan's id")],
        request=InputSerializer,
        responses={200: PlanOutputSerializer, **error_responses(400, 404)},
        tags=["campaigns"],
    )
    def patch(self, request: Request, plan_id: int) -> Response:
        plan = channel_plan_get(plan_id=plan_id)
        if plan is None:
            raise NotFound(f"No channel plan with id {plan_id}.")
        payload = self.InputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        plan = channel_plan_update(plan=plan, **_audit_context(request), **payload.validated_data)
        return Response(PlanOutputSerializer(plan).data)


# --- channel effectiveness ------------------------------------------------------------------------


class ChannelEffectivenessApi(APIView):
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(required=False, help_text="A model's key; omitted: the default model")
        start = serializers.DateField(
            required=False,
            input_formats=["%Y-%m-%d"],
            help_text=f"First day of the period (UTC); default {DEFAULT_PERIOD_DAYS - 1} days before `end`",
        )
        end = serializers.DateField(
            required=False, input_formats=["%Y-%m-%d"], help_text="Last day of the period, inclusive; default today"
        )
        window_days = serializers.IntegerField(
            required=False,
            default=DEFAULT_WINDOW_DAYS,
            min_value=1,
            max_value=MAX_WINDOW_DAYS,
            help_text="Advancing counts within this many days of the reference moment",
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            model = model_or_error(attrs.get("model"))
            end: date = attrs.get("end") or timezone.now().astimezone(UTC).date()
            start: date = attrs.get("start") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
            if end < start:
                raise serializers.ValidationError(
                    {"end": [f"end ({end.isoformat()}) is before start ({start.isoformat()})."]}
                )
            if (end - start).days >= MAX_PERIOD_DAYS:
                raise serializers.ValidationError({"start": [f"A period spans at most {MAX_PERIOD_DAYS} days."]})
            return {
                "model": model,
                "start": day_start(start),
                "end": day_end(end),
                "window_days": attrs["window_days"],
            }

    class OutputSerializer(serializers.Serializer):
        class ChannelSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField()

            class Meta:
                ref_name = "EffectivenessChannel"

        class CellSerializer(serializers.Serializer):
            stage = serializers.CharField()
            channel = serializers.CharField()
            treated = serializers.IntegerField(help_text="Customers in the stage touched on the channel")
            treated_advanced = serializers.IntegerField()
            treated_share = serializers.FloatField(allow_null=True)
            untreated = serializers.IntegerField(help_text="Customers in the stage not touched on the channel")
            untreated_advanced = serializers.IntegerField()
            untreated_share = serializers.FloatField(allow_null=True)
            difference = serializers.FloatField(allow_null=True, help_text="treated_share − untreated_share")
            ci_low = serializers.FloatField(allow_null=True, help_text="95 % confidence interval of the difference")
            ci_high = serializers.FloatField(allow_null=True)

            class Meta:
                ref_name = "EffectivenessCell"

        model = serializers.CharField()
        start = serializers.CharField(help_text="ISO 8601, the period's first moment")
        end = serializers.CharField(help_text="ISO 8601, the period's last moment")
        as_of = serializers.CharField(help_text="ISO 8601: the history is read as of this moment")
        window_days = serializers.IntegerField()
        confidence = serializers.FloatField()
        stages = StageSerializer(many=True)
        channels = ChannelSerializer(many=True)
        cells = CellSerializer(many=True, help_text="One per stage × active channel")

        class Meta:
            ref_name = "ChannelEffectiveness"

    @extend_schema(
        operation_id="channel_effectiveness",
        summary="Per stage × channel: do customers touched on the channel advance more often than the others?",
        description="For each stage and active channel, over the period: the customers in the stage who had a "
        "touchpoint on the channel while in it (treated) and the others (untreated), the share of each that "
        "advanced to a later funnel stage (or, from an exit stage, back to any funnel stage) within `window_days`, "
        "and the difference with a 95 % confidence interval (null when a group is empty).",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400)},
        tags=["campaigns"],
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(self.OutputSerializer(channel_effectiveness_compute(**params.validated_data)).data)
