"""Campaigns API: experiments (routes: campaigns/urls.py).

One view per operation; errors in the one shape of clm.base.api_errors (docs/API.md).
"""

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.experiments.assignment import experiment_assign
from campaigns.experiments.crud import (
    experiment_create,
    experiment_get,
    experiment_list,
    experiment_start,
    experiment_stop,
)
from campaigns.experiments.errors import CustomerIneligible, ExperimentStateError, ExperimentStopped
from campaigns.experiments.results import experiment_results
from campaigns.models import ExperimentGoal
from clm.base.api import CanRead, CanWrite
from clm.base.api_errors import Conflict, error_responses
from lifecycle.apis.common import MomentField, customer_not_found
from lifecycle.models import Channel
from lifecycle.selectors import customer_get, lifecycle_model_get, lifecycle_model_keys, stage_get, stage_keys

_KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The experiment's key")
_CUSTOMER = OpenApiParameter(
    "customer_external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The shop's id of the customer"
)


def _audit_user(request: Request) -> AbstractBaseUser | None:
    """The person behind a write, for the audit history; None for an API key (a client, not a User row)."""
    user = request.user
    return user if isinstance(user, AbstractBaseUser) else None


def _not_found(key: str) -> NotFound:
    return NotFound(f"No experiment with key {key!r}.")


class ExperimentOutputSerializer(serializers.Serializer):
    class VariantSerializer(serializers.Serializer):
        key = serializers.CharField()
        name = serializers.CharField()
        weight = serializers.IntegerField()
        is_control = serializers.BooleanField()

        class Meta:
            ref_name = "ExperimentVariant"

    key = serializers.CharField()
    name = serializers.CharField()
    hypothesis = serializers.CharField()
    model = serializers.CharField(source="model.key")
    stage = serializers.CharField(source="stage.key", help_text="The population: customers currently in this stage")
    channel = serializers.CharField(source="channel.key", allow_null=True, help_text="null: any channel")
    goal = serializers.CharField(help_text="reach_stage or place_order")
    goal_stage = serializers.CharField(source="goal_stage.key", allow_null=True)
    window_days = serializers.IntegerField()
    minimum_detectable_effect = serializers.FloatField()
    power = serializers.FloatField()
    alpha = serializers.FloatField()
    status = serializers.CharField(help_text="draft, running or stopped")
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    variants = VariantSerializer(many=True, help_text="In assignment order")

    class Meta:
        ref_name = "Experiment"


class ExperimentListApi(APIView):
    @extend_schema(
        operation_id="experiments_list",
        summary="Experiments, newest first",
        description="Every experiment with its variants (in assignment order); not paginated: a shop runs a handful.",
        responses={200: ExperimentOutputSerializer(many=True)},
        tags=["experiments"],
    )
    def get(self, request: Request) -> Response:
        return Response(ExperimentOutputSerializer(experiment_list(), many=True).data)


class ExperimentCreateApi(APIView):
    permission_classes = [CanWrite]

    class InputSerializer(serializers.Serializer):
        class VariantSerializer(serializers.Serializer):
            key = serializers.SlugField(max_length=50)
            name = serializers.CharField(max_length=200, required=False)
            weight = serializers.IntegerField(min_value=0, max_value=1_000_000, default=1)
            is_control = serializers.BooleanField(default=False)

            class Meta:
                ref_name = "ExperimentVariantInput"

        key = serializers.SlugField(max_length=80, help_text="Part of the assignment hash: never reuse or change it")
        name = serializers.CharField(max_length=200)
        hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
        model = serializers.CharField(help_text="The lifecycle model's key")
        stage = serializers.CharField(help_text="The population: a stage key of the model")
        channel = serializers.CharField(required=False, allow_null=True, default=None, help_text="A channel key")
        goal = serializers.ChoiceField(choices=ExperimentGoal.values)
        goal_stage = serializers.CharField(
            required=False, allow_null=True, default=None, help_text="For reach_stage: a stage key of the model"
        )
        window_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
        minimum_detectable_effect = serializers.FloatField(default=0.02, help_text="Absolute, e.g. 0.02 = 2 points")
        power = serializers.FloatField(default=0.8)
        alpha = serializers.FloatField(default=0.05)
        variants = VariantSerializer(many=True)

        class Meta:
            ref_name = "ExperimentCreateInput"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            """Keys to objects; domain rules (control, weights, goal) are the service's, so every caller gets them."""
            model = lifecycle_model_get(key=attrs["model"])
            if model is None:
                known = ", ".join(lifecycle_model_keys()) or "none"
                raise serializers.ValidationError({"model": [f"Unknown model {attrs['model']!r}; known: {known}."]})
            attrs["model"] = model
            errors = {}
            for field in ("stage", "goal_stage"):
                if attrs.get(field) is None:
                    continue
                stage = stage_get(model=model, key=attrs[field])
                if stage is None:
                    known = ", ".join(stage_keys(model=model))
                    errors[field] = [f"Unknown stage {attrs[field]!r} in model {model.key!r}; known: {known}."]
                attrs[field] = stage
            if attrs["channel"] is not None:
                channel = Channel.objects.filter(key=attrs["channel"]).first()
                if channel is None:
                    known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
                    errors["channel"] = [f"Unknown channel {attrs['channel']!r}; known: {known}."]
                attrs["channel"] = channel
            if errors:
                raise serializers.ValidationError(errors)
            attrs["variants"] = [dict(variant) for variant in attrs["variants"]]
            return attrs

    @extend_schema(
        operation_id="experiments_create",
        summary="Create a draft experiment with its variants",
        description="Two or more variants, exactly one of them the control; weights are whole numbers ≥ 0 with a "
        "positive sum. The goal `reach_stage` names a `goal_stage` of the model; `place_order` counts completed "
        "orders. Every invalid field is named in the 400 answer and nothing is written. Start it with "
        "`experiments/{key}/start/`.",
        request=InputSerializer,
        responses={201: ExperimentOutputSerializer, **error_responses(400)},
        tags=["experiments"],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = experiment_create(**data.validated_data, user=_audit_user(request))
        return Response(ExperimentOutputSerializer(experiment_get(key=experiment.key)).data, status.HTTP_201_CREATED)


class ExperimentsApi(ExperimentListApi, ExperimentCreateApi):
    """`experiments/`: GET lists (read scope), POST creates (write scope)."""

    def get_permissions(self) -> list[BasePermission]:
        return [CanRead()] if self.request.method in SAFE_METHODS else [CanWrite()]


class ExperimentDetailApi(APIView):
    @extend_schema(
        operation_id="experiment_detail",
        summary="One experiment",
        parameters=[_KEY],
        responses={200: ExperimentOutputSerializer, **error_responses(404)},
        tags=["experiments"],
    )
    def get(self, request: Request, key: str) -> Response:
        experiment = experiment_get(key=key)
        if experiment is None:
            raise _not_found(key)
        return Response(ExperimentOutputSerializer(experiment).data)


def _status_change(action: Any, request: Request, key: str) -> Response:
    experiment = experiment_get(key=key)
    if experiment is None:
        raise _not_found(key)
    try:
        with transaction.atomic():
            action(experiment=experiment, user=_audit_user(request))
    except ExperimentStateError as error:
        raise Conflict(str(error), code="experiment_state") from None
    return Response(ExperimentOutputSerializer(experiment).data)


class ExperimentStartApi(APIView):
    permission_classes = [CanWrite]

    @extend_schema(
        operation_id="experiment_start",
        summary="Start a draft experiment",
        description="From now on assignment records exposures. Only a draft starts (409 otherwise).",
        parameters=[_KEY],
        request=None,
        responses={200: ExperimentOutputSerializer, **error_responses(404, 409)},
        tags=["experiments"],
    )
    def post(self, request: Request, key: str) -> Response:
        return _status_change(experiment_start, request, key)


class ExperimentStopApi(APIView):
    permission_classes = [CanWrite]

    @extend_schema(
        operation_id="experiment_stop",
        summary="Stop a running experiment",
        description="Exposed customers keep their variant; nobody new is exposed. Only a running experiment "
        "stops (409 for a draft or a stopped one).",
        parameters=[_KEY],
        request=None,
        responses={200: ExperimentOutputSerializer, **error_responses(404, 409)},
        tags=["experiments"],
    )
    def post(self, request: Request, key: str) -> Response:
        return _status_change(experiment_stop, request, key)


class ExperimentAssignmentApi(APIView):
    class OutputSerializer(serializers.Serializer):
        experiment = serializers.CharField()
        customer_external_id = serializers.CharField()
        state = serializers.ChoiceField(
            choices=["assigned", "ineligible", "stopped"],
            help_text="assigned: show `variant`; ineligible / stopped: no variant, show the default experience",
        )
        variant = serializers.CharField(allow_null=True)
        variant_name = serializers.CharField(allow_null=True)
        is_control = serializers.BooleanField(allow_null=True)
        exposed_at = serializers.DateTimeField(allow_null=True, help_text="When the exposure was recorded")
        new_exposure = serializers.BooleanField(help_text="true: this call recorded the exposure")
        reason = serializers.CharField(allow_null=True, help_text="Why there is no variant")

        class Meta:
            ref_name = "ExperimentAssignment"

    @extend_schema(
        operation_id="experiment_assignment",
        summary="Which variant is this customer in? (assigns and records the exposure)",
        description="Idempotent: the first call for a customer records the exposure (`new_exposure: true`), every "
        "later call returns the same variant. The variant is a stable hash of the experiment key and the customer's "
        "external id. A customer outside the population (not in the stage, or no touchpoint on the experiment's "
        "channel) gets `state: ineligible`; after the stop, exposed customers keep their variant and others get "
        "`state: stopped` (both 200, no exposure recorded). 409 before the experiment starts; 404 for an unknown "
        "experiment or customer.",
        parameters=[_KEY, _CUSTOMER],
        responses={200: OutputSerializer, **error_responses(404, 409)},
        tags=["experiments"],
    )
    def get(self, request: Request, key: str, customer_external_id: str) -> Response:
        experiment = experiment_get(key=key)
        if experiment is None:
            raise _not_found(key)
        customer = customer_get(external_id=customer_external_id)
        if customer is None:
            raise customer_not_found(customer_external_id)
        body: dict[str, Any] = {
            "experiment": experiment.key,
            "customer_external_id": customer.external_id,
            "variant": None,
            "variant_name": None,
            "is_control": None,
            "exposed_at": None,
            "new_exposure": False,
            "reason": None,
        }
        try:
            variant, exposure, created = experiment_assign(experiment=experiment, customer=customer)
        except ExperimentStateError as error:
            raise Conflict(str(error), code="experiment_state") from None
        except (CustomerIneligible, ExperimentStopped) as error:
            state = "stopped" if isinstance(error, ExperimentStopped) else "ineligible"
            body.update(state=state, reason=str(error))
            return Response(self.OutputSerializer(body).data)
        body.update(
            state="assigned",
            variant=variant.key,
            variant_name=variant.name,
            is_control=variant.is_control,
            exposed_at=exposure.exposed_at,
            new_exposure=created,
        )
        return Response(self.OutputSerializer(body).data)


class IntervalSerializer(serializers.Serializer):
    estimate = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()

    class Meta:
        ref_name = "ExperimentInterval"


class UpliftSerializer(serializers.Serializer):
    absolute = IntervalSerializer(help_text="Rate difference vs control (points), unpooled Wald CI")
    relative = IntervalSerializer(
        allow_null=True, help_text="Rate ratio − 1 vs control, log risk-ratio CI; null when either has no conversion"
    )

    class Meta:
        ref_name = "ExperimentUplift"


class ExperimentResultsApi(APIView):
    class InputSerializer(serializers.Serializer):
        as_of = MomentField(
            day_end=True,
            required=False,
            help_text="A date (its end, UTC) or date-time: exposures and goal events up to then. Omitted: now.",
        )

    class OutputSerializer(serializers.Serializer):
        class VariantSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField()
            is_control = serializers.BooleanField()
            weight = serializers.IntegerField()
            exposed = serializers.IntegerField()
            converted = serializers.IntegerField()
            conversion_rate = serializers.FloatField(allow_null=True)
            uplift = UpliftSerializer(allow_null=True, help_text="vs control; null for the control")
            z = serializers.FloatField(allow_null=True)
            p_value = serializers.FloatField(allow_null=True, help_text="Two-proportion z-test vs control")
            p_value_adjusted = serializers.FloatField(
                allow_null=True, help_text="p_value after Holm's adjustment for the variants compared with the control"
            )
            significant = serializers.BooleanField(
                allow_null=True, help_text="p_value_adjusted < alpha; null: not enough data"
            )
            still_needed = serializers.IntegerField(allow_null=True)

            class Meta:
                ref_name = "ExperimentVariantResult"

        class TestSerializer(serializers.Serializer):
            method = serializers.CharField(help_text="z-test (two variants) or chi-square (more)")
            statistic = serializers.FloatField(allow_null=True)
            p_value = serializers.FloatField(allow_null=True)
            dof = serializers.IntegerField(allow_null=True)

            class Meta:
                ref_name = "ExperimentTest"

        class SampleSizeSerializer(serializers.Serializer):
            baseline_rate = serializers.FloatField(allow_null=True, help_text="The control's conversion rate")
            per_variant = serializers.IntegerField(allow_null=True)
            still_needed = serializers.IntegerField(allow_null=True, help_text="More exposures, all variants")

            class Meta:
                ref_name = "ExperimentSampleSize"

        experiment = serializers.CharField()
        status = serializers.CharField()
        as_of = serializers.DateTimeField()
        goal = serializers.CharField()
        goal_stage = serializers.CharField(allow_null=True)
        window_days = serializers.IntegerField()
        alpha = serializers.FloatField()
        power = serializers.FloatField()
        minimum_detectable_effect = serializers.FloatField()
        state = serializers.ChoiceField(choices=["not_enough_data", "running", "significant", "not_significant"])
        state_reason = serializers.CharField(allow_blank=True)
        test = TestSerializer()
        sample_size = SampleSizeSerializer()
        variants = VariantSerializer(many=True)

        class Meta:
            ref_name = "ExperimentResults"

    @extend_schema(
        operation_id="experiment_results",
        summary="Conversion, uplift, p-values and sample size per variant",
        description="See the experiments documentation for each statistic and the states.",
        parameters=[_KEY, InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 404)},
        tags=["experiments"],
    )
    def get(self, request: Request, key: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        experiment = experiment_get(key=key)
        if experiment is None:
            raise _not_found(key)
        results = experiment_results(experiment=experiment, as_of=params.validated_data.get("as_of"))
        return Response(self.OutputSerializer(results).data)
