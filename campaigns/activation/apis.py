"""The destinations API (admin scope; routes: urls.py): destinations, their deliveries, a test event, secret
rotation, replay. Errors in the one shape of clm.base.api_errors (docs/API.md). A secret is in an answer once: when
the destination is created and when it is rotated."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.activation.models import SUBSCRIBABLE, Delivery, DeliveryState, Destination, DestinationState
from campaigns.activation.services import (
    delivery_replay,
    destination_save,
    destination_state_set,
    destination_test_queue,
    secret_rotate,
)
from clm.base.api import CanAdmin
from clm.base.api_errors import error_responses
from lifecycle.apis.common import CustomerCursorPagination
from lifecycle.models import LifecycleModel


class DestinationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    url = serializers.URLField(max_length=2000, help_text="Where the events are posted (https, a public address)")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[str(value) for value in SUBSCRIBABLE]), allow_empty=False
    )
    models = serializers.SlugRelatedField(
        source="lifecycle_models",
        slug_field="key",
        many=True,
        queryset=LifecycleModel.objects.all(),
        required=False,
        help_text="Keys of the models whose stage changes it takes; empty: every model",
    )
    state = serializers.ChoiceField(choices=DestinationState.choices, required=False)
    state_message = serializers.CharField(read_only=True)

    class Meta:
        ref_name = "Destination"


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    webhook_id = serializers.CharField(source="message_id")
    type = serializers.CharField()
    customer = serializers.CharField(source="customer.external_id", allow_null=True, default=None)
    occurred_at = serializers.DateTimeField()
    state = serializers.CharField(help_text="pending, delivered or failed")
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(help_text="When a pending delivery is tried next")
    delivered_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.IntegerField(allow_null=True, help_text="The receiver's last HTTP status")
    last_error = serializers.CharField()

    class Meta:
        ref_name = "Delivery"


_SECRET = inline_serializer("DestinationSecret", {"secret": serializers.CharField(help_text="Shown once")})


def _saved(data: Any, destination: Destination | None, request: Request) -> tuple[Destination, str | None]:
    serializer = DestinationSerializer(data=data, partial=destination is not None)
    serializer.is_valid(raise_exception=True)
    values = serializer.validated_data
    current = destination
    try:
        saved, secret = destination_save(
            destination=destination,
            name=values.get("name", current.name if current else ""),
            url=values.get("url", current.url if current else ""),
            event_types=values.get("event_types", current.event_types if current else []),
            lifecycle_models=list(values.get("lifecycle_models", current.lifecycle_models.all() if current else [])),
            actor=request.user,
        )
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict) from None
    if "state" in values and values["state"] != saved.state:
        destination_state_set(destination=saved, active=values["state"] == DestinationState.ACTIVE, actor=request.user)
        saved.refresh_from_db()
    return saved, secret


class DestinationsApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="destinations_list", summary="Destinations", responses={200: DestinationSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        destinations = Destination.objects.prefetch_related("lifecycle_models")
        return Response(DestinationSerializer(destinations, many=True).data)

    @extend_schema(
        operation_id="destinations_create",
        summary="Create a webhook destination",
        description="The answer holds its signing secret, shown this once.",
        request=DestinationSerializer,
        responses={201: DestinationSerializer, **error_responses(400)},
    )
    def post(self, request: Request) -> Response:
        destination, secret = _saved(request.data, None, request)
        return Response({**DestinationSerializer(destination).data, "secret": secret}, status=status.HTTP_201_CREATED)


class DestinationDetailApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="destinations_retrieve",
        summary="A destination",
        responses={200: DestinationSerializer, **error_responses(404)},
    )
    def get(self, request: Request, destination_id: int) -> Response:
        return Response(DestinationSerializer(get_object_or_404(Destination, pk=destination_id)).data)

    @extend_schema(
        operation_id="destinations_update",
        summary="Change a destination (state: active or disabled)",
        request=DestinationSerializer,
        responses={200: DestinationSerializer, **error_responses(400, 404)},
    )
    def patch(self, request: Request, destination_id: int) -> Response:
        destination, _ = _saved(request.data, get_object_or_404(Destination, pk=destination_id), request)
        return Response(DestinationSerializer(destination).data)


class DestinationTestApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="destinations_test",
        summary="Send a test event",
        request=None,
        responses={202: DeliverySerializer, **error_responses(404)},
    )
    def post(self, request: Request, destination_id: int) -> Response:
        delivery = destination_test_queue(destination=get_object_or_404(Destination, pk=destination_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DestinationSecretApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="destinations_rotate_secret",
        summary="Rotate the signing secret",
        description="The new secret, shown this once; the old one signs too for CLM_WEBHOOK_SECRET_OVERLAP_HOURS.",
        request=None,
        responses={200: _SECRET, **error_responses(404)},
    )
    def post(self, request: Request, destination_id: int) -> Response:
        destination = get_object_or_404(Destination, pk=destination_id)
        return Response({"secret": secret_rotate(destination=destination, actor=request.user)})


class DeliveryCursorPagination(CustomerCursorPagination):
    """The same cursor pages (a malformed cursor is bad input), the newest delivery first."""

    ordering = "-id"


class DeliveriesApi(APIView):
    permission_classes = [CanAdmin]
    pagination_class = DeliveryCursorPagination

    class InputSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)

    @extend_schema(
        operation_id="destinations_deliveries",
        summary="A destination's deliveries, newest first (the delivery log)",
        parameters=[InputSerializer],
        responses={200: DeliverySerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, destination_id: int) -> Response:
        destination = get_object_or_404(Destination, pk=destination_id)
        filters = self.InputSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = destination.deliveries.select_related("customer")
        if "state" in filters.validated_data:
            deliveries = deliveries.filter(state=filters.validated_data["state"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class DeliveryReplayApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="deliveries_replay",
        summary="Send a delivered or failed delivery again, with its webhook-id",
        request=None,
        responses={202: DeliverySerializer, **error_responses(400, 404)},
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        try:
            delivery = delivery_replay(delivery=get_object_or_404(Delivery, pk=delivery_id))
        except DjangoValidationError as error:
            raise serializers.ValidationError({"state": error.messages}) from None
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
