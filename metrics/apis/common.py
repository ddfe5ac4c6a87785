"""What the metrics endpoints share: the validation of their query input, the model of their path and the schema of
their operation."""

from typing import Any, TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request

from clm.base.api_errors import error_responses
from lifecycle.apis.common import model_not_found
from lifecycle.models import LifecycleModel
from lifecycle.selectors import lifecycle_model_get

InputT = TypeVar("InputT", bound=serializers.Serializer)

KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model's key")


def input_valid(input_class: type[InputT], request: Request) -> InputT:
    """The query string validated by `input_class` (a 400 naming the parameters when it is not valid)."""
    params = input_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params


def path_model(key: str) -> LifecycleModel:
    """The model of the path's `key` (a 404 naming the known keys when there is none)."""
    model = lifecycle_model_get(key=key)
    if model is None:
        raise model_not_found(key)
    return model


def operation_schema(
    operation_id: str,
    summary: str,
    description: str,
    inputs: type[serializers.Serializer],
    responses: Any,
    path_key: bool = False,
) -> Any:
    """A GET of the metrics API: its query parameters are the fields of `inputs`; its answer `responses` (a dict:
    its answers by (200, media type)); `path_key`: under models/{key}/."""
    parameters: list[OpenApiParameter | type[serializers.Serializer]] = (
        [KEY_PARAMETER, inputs] if path_key else [inputs]
    )
    ok = responses if isinstance(responses, dict) else {200: responses}
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        parameters=parameters,
        responses={**ok, **error_responses(400, 404)},
        tags=["metrics"],
    )
