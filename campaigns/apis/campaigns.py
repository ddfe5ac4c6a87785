"""Campaigns API: campaigns and their spend (routes: campaigns/urls.py).

One view per operation. Errors in the one shape of clm.base.api_errors (docs/API.md): 400 for bad input (nothing
written), 404 for an unknown campaign. Reads need the read scope, changes the write scope.
"""

from typing import Any

from django.conf import settings
from django.db import IntegrityError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.campaigns.crud import campaign_create, campaign_get, campaign_list, campaign_update
from campaigns.campaigns.results import campaign_results
from campaigns.campaigns.spend import campaign_spend_record_many
from campaigns.campaigns.validation import MAX_ATTRIBUTION_DAYS
from campaigns.models import Campaign, CampaignStatus, SpendPeriod
from clm.base.api import CanRead, CanWrite
from clm.base.api_errors import BadRequest, Conflict, InvalidBatch, batch_items, error_responses, field_errors
from lifecycle.apis.common import MomentField
from lifecycle.ingest import IngestRejected

_ID_PARAMETER = OpenApiParameter("campaign_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Campaign id")


class ReadOrWrite(BasePermission):
    """GET needs the read scope; POST and PATCH the write scope."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        permission = CanRead() if request.method in SAFE_METHODS else CanWrite()
        self.message = permission.message
        return permission.has_permission(request, view)


def _not_found(campaign_id: int) -> NotFound:
    return NotFound(f"No campaign with id {campaign_id}.")


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object.", code="not_an_object")
    return data


class CampaignOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="The code orders, touchpoints and spend carry")
    name = serializers.CharField()
    channel = serializers.CharField(source="channel.key")
    model = serializers.CharField(source="model.key")
    stages = serializers.SerializerMethodField(help_text="Target stage keys, in funnel order")
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True, coerce_to_string=False)
    status = serializers.CharField(help_text="draft, active, paused or completed")
    attribution_days = serializers.IntegerField()
    spend_to_date = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        coerce_to_string=False,
        help_text="All spend recorded under the code (day and month rows)",
    )

    class Meta:
        ref_name = "Campaign"

    def get_stages(self, campaign: Campaign) -> list[str]:
        # Sorted in Python over the prefetched stages: an order_by() here would query once per campaign.
        return [stage.key for stage in sorted(campaign.stages.all(), key=lambda stage: (stage.position, stage.pk))]


_ATTRIBUTION = inline_serializer(
    "CampaignAttribution",
    {
        "label": serializers.CharField(),
        "orders": serializers.IntegerField(),
        "customers": serializers.IntegerField(),
        "revenue": serializers.FloatField(),
        "roas": serializers.FloatField(allow_null=True, help_text="revenue / spend; null without spend"),
    },
)
_RESULTS = inline_serializer(
    "CampaignResults",
    {
        "code": serializers.CharField(),
        "as_of": serializers.DateTimeField(),
        "period": inline_serializer(
            "CampaignPeriod", {"start": serializers.DateField(), "end": serializers.DateField()}
        ),
        "attribution_days": serializers.IntegerField(),
        "spend": serializers.FloatField(),
        "budget": serializers.FloatField(allow_null=True),
        "reached": serializers.IntegerField(help_text="Customers with a touchpoint carrying the code in the period"),
        "advancement": inline_serializer(
            "CampaignAdvancement",
            {
                "in_target_stage": serializers.IntegerField(),
                "advanced": serializers.IntegerField(),
                "rate": serializers.FloatField(allow_null=True),
                "definition": serializers.CharField(),
            },
        ),
        "revenue": inline_serializer(
            "CampaignRevenue", {"campaign_code": _ATTRIBUTION, "touchpoint_window": _ATTRIBUTION}
        ),
        "new_customers": inline_serializer(
            "CampaignNewCustomers",
            {
                "total": serializers.IntegerField(),
                "by_campaign_code": serializers.IntegerField(),
                "by_touchpoint_window": serializers.IntegerField(),
                "definition": serializers.CharField(),
            },
        ),
        "cac": serializers.FloatField(allow_null=True, help_text="spend / new customers; null without any"),
    },
)


# For the schema only: the view adds the results dict (already plain JSON) to the campaign's fields.
class CampaignDetailOutputSerializer(CampaignOutputSerializer):
    results = _RESULTS

    class Meta:
        ref_name = "CampaignDetail"


class CampaignInputSerializer(serializers.Serializer):
    """The fields' types; references (channel, model, stages) and cross-field rules are checked by the service."""

    code = serializers.CharField(max_length=100, trim_whitespace=False)
    name = serializers.CharField(max_length=200)
    channel = serializers.CharField(help_text="A channel key, e.g. email")
    model = serializers.CharField(help_text="A lifecycle model key, e.g. status")
    stages = serializers.ListField(child=serializers.CharField(), min_length=1, help_text="Stage keys of the model")
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)
    status = serializers.ChoiceField(choices=CampaignStatus.choices, required=False)
    attribution_days = serializers.IntegerField(min_value=1, max_value=MAX_ATTRIBUTION_DAYS, required=False)

    class Meta:
        ref_name = "CampaignInput"


class CampaignsApi(APIView):
    """`campaigns/`: GET lists (read scope), POST creates (write scope)."""

    permission_classes = [ReadOrWrite]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=CampaignStatus.choices, required=False)

    @extend_schema(
        operation_id="campaigns_list",
        summary="Campaigns with period, budget and spend to date",
        parameters=[FilterSerializer],
        responses={200: CampaignOutputSerializer(many=True), **error_responses(400)},
        tags=["campaigns"],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        campaigns = campaign_list(status=params.validated_data.get("status"))
        return Response(CampaignOutputSerializer(campaigns, many=True).data)

    @extend_schema(
        operation_id="campaign_create",
        summary="Create a campaign",
        description="Channel, model and stages are named by their keys; the stages must belong to the model. "
        "Every problem is reported at once, and nothing is written.",
        request=CampaignInputSerializer,
        responses={201: CampaignOutputSerializer, **error_responses(400)},
        examples=[
            OpenApiExample(
                "win-back email",
                request_only=True,
                value={
                    "code": "winback25-email",
                    "name": "Win-back spring 2025",
                    "channel": "email",
                    "model": "status",
                    "stages": ["inactive", "former"],
                    "start_date": "2025-03-01",
                    "end_date": "2025-03-31",
                    "budget": "1500.00",
                    "status": "active",
                    "attribution_days": 30,
                },
            )
        ],
        tags=["campaigns"],
    )
    def post(self, request: Request) -> Response:
        payload = CampaignInputSerializer(data=_object(request.data))
        payload.is_valid(raise_exception=True)
        campaign = campaign_create(**payload.validated_data, actor=request.user)
        campaign = campaign_get(campaign_id=campaign.pk)
        return Response(CampaignOutputSerializer(campaign).data, status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    """`campaigns/{id}/`: GET shows a campaign with its results (read scope), PATCH changes it (write scope)."""

    permission_classes = [ReadOrWrite]

    class ResultsInputSerializer(serializers.Serializer):
        as_of = MomentField(
            day_end=True,
            required=False,
            help_text="Results as of this date (its end, UTC) or date-time; omitted: now",
        )

    @extend_schema(
        operation_id="campaign_detail",
        summary="A campaign and its results",
        description="Results: spend, reached customers, advancement rate, revenue by two attributions (orders "
        "carrying the code; orders within attribution_days after a campaign touchpoint) with ROAS each, new "
        "customers and CAC; each figure carries its definition or label.",
        parameters=[_ID_PARAMETER, ResultsInputSerializer],
        responses={
            200: CampaignDetailOutputSerializer,
            **error_responses(400, 404),
        },
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        params = self.ResultsInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        campaign = campaign_get(campaign_id=campaign_id)
        if campaign is None:
            raise _not_found(campaign_id)
        body = CampaignOutputSerializer(campaign).data
        body["results"] = campaign_results(campaign=campaign, as_of=params.validated_data.get("as_of"))
        return Response(body)

    @extend_schema(
        operation_id="campaign_update",
        summary="Change a campaign",
        description="Send only the fields to change; they are validated together with the stored ones. The code "
        "cannot change once spend is recorded under it.",
        parameters=[_ID_PARAMETER],
        request=CampaignInputSerializer(partial=True),
        responses={200: CampaignOutputSerializer, **error_responses(400, 404)},
        tags=["campaigns"],
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get(campaign_id=campaign_id)
        if campaign is None:
            raise _not_found(campaign_id)
        unknown = sorted(set(_object(request.data)) - set(CampaignInputSerializer().fields))
        if unknown:
            raise ValidationError({field: [ErrorDetail("Unknown field.", code="unknown_field")] for field in unknown})
        payload = CampaignInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        campaign_update(campaign=campaign, data=payload.validated_data, actor=request.user)
        return Response(CampaignOutputSerializer(campaign_get(campaign_id=campaign_id)).data)


class SpendInputSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=SpendPeriod.choices)
    date = serializers.DateField(
        help_text="The day; for monthly spend the first day of the month (another day is refused)"
    )
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)

    class Meta:
        ref_name = "CampaignSpendInput"


_SPEND_RESULT = inline_serializer(
    "CampaignSpendResult",
    {
        "results": inline_serializer(
            "CampaignSpendItem",
            {
                "index": serializers.IntegerField(),
                # A plain string: a second enum of these values would collide with the ingestion's in the schema.
                "status": serializers.CharField(help_text="created, updated or unchanged"),
                "period": serializers.CharField(),
                "date": serializers.DateField(),
                "amount": serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False),
            },
            many=True,
        ),
        "spend_to_date": serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=False),
    },
)


class CampaignSpendApi(APIView):
    """`campaigns/{id}/spend/`: record spend on the campaign's channel under its code (write scope)."""

    permission_classes = [CanWrite]

    @extend_schema(
        operation_id="campaign_spend_record",
        summary="Record a campaign's spend per day or month",
        description="Send one object or a list. Each row replaces what was recorded for the same period and date "
        "(so resending changes nothing); a monthly date must be the first of its month, as in `marketing-spend/` "
        "(the same checks: this writes through it). The batch is validated whole: if any item is invalid, nothing "
        "is written and every error is listed.",
        parameters=[_ID_PARAMETER],
        request=SpendInputSerializer(many=True),
        responses={200: _SPEND_RESULT, 201: _SPEND_RESULT, **error_responses(400, 404, 409)},
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get(campaign_id=campaign_id)
        if campaign is None:
            raise _not_found(campaign_id)
        items = batch_items(request, limit=settings.CLM_INGEST_MAX_ITEMS)
        errors: list[dict[str, Any]] = []
        valid = []
        for index, item in enumerate(items):
            serializer = SpendInputSerializer(data=item)
            if not isinstance(item, dict):
                errors.append(
                    {"index": index, "field": "", "message": "Expected a JSON object.", "code": "not_an_object"}
                )
            elif serializer.is_valid():
                valid.append(serializer.validated_data)
            else:
                errors.extend(field_errors(serializer.errors, index=index))
        if errors:
            raise InvalidBatch(errors=errors, items=len(items))
        try:
            recorded = campaign_spend_record_many(campaign=campaign, entries=valid)
        except IngestRejected as rejected:
            raise InvalidBatch(errors=[vars(error) for error in rejected.errors], items=len(items)) from None
        except IntegrityError:
            raise Conflict(
                "A concurrent request wrote the same spend; nothing was written, retry.", code="concurrent_write"
            ) from None
        results = [
            {
                "index": index,
                "status": item.status,
                "period": item.spend.period,
                "date": item.spend.date,
                "amount": item.spend.amount,
            }
            for index, item in enumerate(recorded)
        ]
        spend_to_date = campaign_get(campaign_id=campaign_id).spend_to_date
        created = any(result["status"] == "created" for result in results)
        # DRF's JSON encoder writes Decimals as numbers and dates as YYYY-MM-DD.
        return Response(
            {"results": results, "spend_to_date": spend_to_date},
            status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
