"""A model's pipeline over time: customers per stage at the end of every day of a period."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.apis.common import input_valid, operation_schema, path_model
from metrics.params import PeriodInput
from metrics.selectors import pipeline_series


class ModelPipelineHistoryApi(APIView):
    @operation_schema(
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
        params = input_valid(PeriodInput, request)
        model = path_model(key)
        return Response(
            pipeline_series(model=model, start=params.validated_data["start"], end=params.validated_data["end"])
        )
