"""Every metric of the registry (metrics.kinds) as an endpoint: `MetricApi.for_kind(name)` derives the view and its
schema from the kind's entry — its input's fields are the query parameters, its result type the answer's `result`.

A metric answers from its stored snapshot when one is fresh, else it is computed now and stored for the next
request; either way the body says when (`computed_at`) and how (`source`).
"""

from typing import Any, cast

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import resolve_type_hint
from drf_spectacular.utils import extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifecycle.apis.common import model_or_error
from lifecycle.models import LifecycleModel
from metrics.apis.common import input_valid, operation_schema, path_model
from metrics.kinds import KINDS, MetricKind
from metrics.params import MetricInput
from metrics.services import metric_result


class MetricResultField(serializers.Field):
    """A metric's stored result, answered as it is; in the schema, the kind's result type."""

    def __init__(self, *, result_type: type, **kwargs: Any) -> None:
        self.result_type = result_type
        super().__init__(**kwargs)


class MetricResultFieldExtension(OpenApiSerializerFieldExtension):
    """The schema of a MetricResultField: its TypedDict as drf-spectacular resolves a type hint (nested TypedDicts,
    lists, optionals), as a component named after it."""

    target_class = MetricResultField

    def get_name(self) -> str:
        return cast(MetricResultField, self.target).result_type.__name__

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> Any:
        return resolve_type_hint(cast(MetricResultField, self.target).result_type)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def metric_answer(kind: MetricKind[Any]) -> serializers.Serializer:
    """The schema of a metric's answer: the snapshot's key and provenance around the kind's result."""
    return inline_serializer(
        f"{_camel(kind.name)}Metric",
        {
            "kind": serializers.CharField(),
            "model": serializers.CharField(allow_null=True),
            "as_of": serializers.DateField(),
            "filters": serializers.DictField(),
            "computed_at": serializers.DateTimeField(),
            "source": serializers.ChoiceField(
                choices=["snapshot", "computed"],
                help_text="snapshot: a stored result; computed: computed for this request",
            ),
            "result": MetricResultField(result_type=kind.result),
        },
    )


class MetricApi(APIView):
    """One metric of the registry: validate its input, answer from the snapshot when fresh, else compute it. Under
    models/{key}/ the model is the path's; other per-model metrics take ?model= (default: the default model)."""

    kind: MetricKind[Any]
    input_class: type[MetricInput]  # the kind's input

    @classmethod
    def for_kind(cls, name: str, *, under_model: bool = False) -> type["MetricApi"]:
        """The endpoint of the kind `name`: under models/{key}/ (operation model_<name>) or not (metrics_<name>)."""
        kind = KINDS[name]
        if kind.input is None:
            raise ValueError(f"The metric {name!r} registers no input: it has no endpoint in the metrics API.")
        schema = operation_schema(
            f"{'model' if under_model else 'metrics'}_{name}",
            kind.summary,
            kind.description,
            kind.input,
            metric_answer(kind),
            path_key=under_model,
        )
        view = type(f"{_camel(name)}MetricApi", (cls,), {"kind": kind, "input_class": kind.input})
        return extend_schema_view(get=schema)(cast(type[MetricApi], view))

    def get(self, request: Request, key: str | None = None) -> Response:
        kind = self.kind
        params = input_valid(self.input_class, request)
        model: LifecycleModel | None = None
        if key is not None:
            model = path_model(key)
        elif kind.per_model:
            model = model_or_error(request.query_params.get("model"))
        data = params.validated_data
        metric_params = {name: data[name] for name in kind.param_names if data.get(name) is not None}
        try:
            snapshot, computed = metric_result(
                kind=kind.name, model=model, filters=params.filters(), params=metric_params
            )
        except kind.data_errors as exc:
            raise serializers.ValidationError({kind.data_error_input: [str(exc)]}) from exc
        return Response(
            {
                "kind": kind.name,
                "model": model.key if model is not None else None,
                "as_of": snapshot.as_of,
                "filters": snapshot.filters,
                "computed_at": snapshot.computed_at,
                "source": "computed" if computed else "snapshot",
                "result": snapshot.result,
            }
        )
