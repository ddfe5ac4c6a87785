"""The benchmarks (with their sources) and goals of the metrics."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.selectors import metric_target_list


class MetricTargetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        label = serializers.CharField()  # type: ignore[assignment]  # the stubs declare Field.label a string
        direction = serializers.CharField()
        benchmark = serializers.FloatField(allow_null=True)
        benchmark_source = serializers.CharField()
        goal = serializers.FloatField(allow_null=True)

        class Meta:
            ref_name = "MetricTarget"

    @extend_schema(
        operation_id="metrics_targets",
        summary="Benchmarks (with sources) and goals per metric",
        responses={200: OutputSerializer(many=True)},
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(metric_target_list(), many=True).data)
