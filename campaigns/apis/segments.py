"""Campaigns API: segments out (routes: campaigns/urls.py).

`GET models/{key}/stages/{stage}/export.csv` streams the customers currently in a stage as CSV (read scope): those
subscribed to email marketing unless `consent=` names another channel or `any`.
Errors are JSON and nothing is streamed: 404 `{"detail"}` for an unknown model or stage, 400
`{"<parameter>": ["message"]}` for a bad filter.
"""

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Experiment, Variant
from campaigns.segments import SEGMENT_COLUMNS, SegmentFilters, segment_rows
from clm.base.api_errors import error_responses
from clm.base.exports import csv_rows
from lifecycle.apis.common import model_not_found
from lifecycle.consent import consent_export_field, consent_filename
from lifecycle.models import Channel
from lifecycle.selectors import lifecycle_model_get, stage_get, stage_keys


class FirstRendererNegotiation(BaseContentNegotiation):
    """Ignore the client's Accept header and `?format=`: the body is CSV (a StreamingHttpResponse, not rendered by
    DRF) or a JSON error. DRF's default negotiation would answer `Accept: text/csv` with 406, and `?format=csv`
    with 404, before the view runs."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class SegmentExportApi(APIView):
    content_negotiation_class = FirstRendererNegotiation

    class InputSerializer(serializers.Serializer):
        consent = consent_export_field()
        experiment = serializers.CharField(
            required=False, help_text="Only customers exposed to this experiment (its key)"
        )
        variant = serializers.CharField(
            required=False, help_text="With `experiment`: only customers exposed to this variant (its key)"
        )
        channel = serializers.CharField(required=False, help_text="A channel key, for `touchpoint`")
        touchpoint = serializers.ChoiceField(
            choices=["with", "without"],
            required=False,
            help_text="With `channel`: customers with (default) or without any touchpoint on that channel",
        )
        since = serializers.DateField(
            required=False, help_text="With `channel`: only touchpoints on or after this day (UTC) count"
        )

        def validate(self, attrs: dict[str, Any]) -> SegmentFilters:
            errors: dict[str, list[str]] = {}
            experiment = variant = channel = None
            if "experiment" in attrs:
                experiment = Experiment.objects.filter(key=attrs["experiment"]).first()
                if experiment is None:
                    errors["experiment"] = [f"Unknown experiment {attrs['experiment']!r}."]
            if "variant" in attrs:
                if "experiment" not in attrs:
                    errors["variant"] = ["Name the experiment too (experiment=KEY)."]
                elif experiment is not None:
                    variant = Variant.objects.filter(experiment=experiment, key=attrs["variant"]).first()
                    if variant is None:
                        known = ", ".join(experiment.variants.values_list("key", flat=True)) or "none"
                        errors["variant"] = [
                            f"Unknown variant {attrs['variant']!r} of experiment {experiment.key!r}; known: {known}."
                        ]
            if "channel" in attrs:
                channel = Channel.objects.filter(key=attrs["channel"]).first()
                if channel is None:
                    known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
                    errors["channel"] = [f"Unknown channel {attrs['channel']!r}; known: {known}."]
            else:
                for name in ("touchpoint", "since"):
                    if name in attrs:
                        errors[name] = ["Name the channel too (channel=KEY)."]
            if errors:
                raise serializers.ValidationError(errors)
            return SegmentFilters(
                experiment=experiment,
                variant=variant,
                channel=channel,
                touchpoint=attrs.get("touchpoint", "with"),
                since=attrs.get("since"),
                consent=attrs["consent"],
            )

    @extend_schema(
        operation_id="segment_export",
        summary="Export the customers of a stage as CSV (streamed)",
        description="The customers currently in the stage who are subscribed to email marketing (`consent=sms`: to "
        "SMS; `consent=any`: every customer), by customer id, with the columns "
        f"`{', '.join(SEGMENT_COLUMNS)}`. p_alive and predicted_clv_365d (expected spend over the next 365 days) "
        "come from the latest CLV fit and are empty for customers without a prediction. The file name says whom "
        "the file holds: `{model}-{stage}-email-consented.csv`, `…-sms-consented.csv` or "
        "`…-regardless-of-consent.csv`. Optional filters: exposed to an experiment (variant); with or without a "
        "touchpoint on a channel (since a day).",
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model's key"),
            OpenApiParameter("stage", OpenApiTypes.STR, OpenApiParameter.PATH, description="The stage's key"),
            InputSerializer,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, header row first"),
            **error_responses(400, 404),
        },
        tags=["campaigns"],
    )
    def get(self, request: Request, key: str, stage: str) -> Response | StreamingHttpResponse:
        model = lifecycle_model_get(key=key)
        if model is None:
            raise model_not_found(key)
        found = stage_get(model=model, key=stage)
        if found is None:
            known = ", ".join(stage_keys(model=model))
            raise NotFound(f"No stage {stage!r} in model {model.key!r}; known: {known}.")
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        # Nothing is read before the first chunk is requested, so every error above is answered before streaming.
        filters = params.validated_data
        rows = segment_rows(stage=found, filters=filters)
        response = StreamingHttpResponse(csv_rows(SEGMENT_COLUMNS, rows), content_type="text/csv; charset=utf-8")
        filename = consent_filename(f"{model.key}-{found.key}", filters.consent)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
