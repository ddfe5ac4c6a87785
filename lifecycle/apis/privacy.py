"""A customer's personal data through the API (admin scope): export it, erase it (docs/PRIVACY.md)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api import CanAdmin
from clm.base.api_errors import error_responses
from lifecycle.models import Customer
from lifecycle.privacy import REASON_MAX_LENGTH, customer_data_export, customer_erase
from lifecycle.selectors import customer_get

_EXTERNAL_ID = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The shop's id of the customer"
)
_NOT_FOUND = "No customer with this external id (also after an erasure)"


def _customer(external_id: str) -> Customer | None:
    # PostgreSQL text cannot hold NUL, so no stored id has one (and querying with it would fail).
    return None if "\x00" in external_id else customer_get(external_id=external_id)


def _not_found(external_id: str) -> NotFound:
    return NotFound(f"No customer with external_id {external_id!r}.")


class CustomerDataExportApi(APIView):
    permission_classes = [CanAdmin]

    @extend_schema(
        operation_id="customer_data_export",
        summary="Everything stored about one customer, as JSON (admin scope)",
        description="The customer's fields and every row of theirs: orders, touchpoints, feedback, current stages, "
        "stage transitions, CLV predictions and experiment exposures. The export is recorded in the customer's "
        "audit history.",
        parameters=[_EXTERNAL_ID],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='`{"exported_at", "customer": {…}, "orders": […], "touchpoints": […], "feedback": […], '
                '"stages": […], "transitions": […], "customer_value": […], "experiment_exposures": […]}`',
            ),
            **error_responses(404, described={404: _NOT_FOUND}),
        },
        tags=["privacy"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        if customer is None:
            raise _not_found(external_id)
        return Response(customer_data_export(customer=customer, actor=request.user))


class CustomerEraseApi(APIView):
    permission_classes = [CanAdmin]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=REASON_MAX_LENGTH, help_text="Kept in the audit history, e.g. the request's ticket number"
        )

        class Meta:
            ref_name = "CustomerEraseInput"

    class OutputSerializer(serializers.Serializer):
        external_id = serializers.CharField(help_text="The token that replaced the shop's id")
        erased_at = serializers.DateTimeField()
        already_erased = serializers.BooleanField()
        cleared = serializers.DictField(
            child=serializers.IntegerField(), help_text="Rows whose personal fields were cleared, per table"
        )
        kept = serializers.DictField(
            child=serializers.IntegerField(), help_text="The customer's anonymised rows kept, per table"
        )

        class Meta:
            ref_name = "CustomerErasure"

    @extend_schema(
        operation_id="customer_erase",
        summary="Erase a customer's personal data (admin scope)",
        description="Anonymises in place: email, name, feedback comments, touchpoint properties and the sources of "
        "marketing consents are cleared and the external id is replaced by a token; orders, touchpoints, scores "
        "and stage history stay, so metrics are unchanged. Idempotent on the token; the old external id answers "
        "404 afterwards.",
        parameters=[_EXTERNAL_ID],
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 404, described={404: _NOT_FOUND})},
        tags=["privacy"],
    )
    def post(self, request: Request, external_id: str) -> Response:
        customer = _customer(external_id)
        if customer is None:
            raise _not_found(external_id)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        erasure = customer_erase(customer=customer, actor=request.user, reason=body.validated_data["reason"])
        return Response(self.OutputSerializer(erasure).data)
