"""The one shape of every API error, and the batch protocol (docs/API.md, "Errors").

{"detail": a sentence for people, "code": a stable code for programs, "errors": [{"field", "message", "code"}, and
"index" for an item of a batch]}; `errors` is empty where no field or item is at fault. Views raise (NotFound,
BadRequest, Conflict, a serializer's or a service's ValidationError, InvalidBatch) and api_exception_handler
answers.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."
    default_code = "bad_request"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class InvalidBatch(exceptions.ValidationError):
    """Items of a batch are invalid, so nothing was written; `errors` names each problem with its item's index."""

    def __init__(self, *, errors: list[dict[str, Any]], items: int) -> None:
        self.errors = errors
        bad = len({error["index"] for error in errors})
        self.summary = f"{bad} of {items} items are invalid; nothing was written."
        super().__init__(self.summary)


def field_errors(detail: Any, *, index: int | None = None, prefix: str = "") -> list[dict[str, Any]]:
    """DRF's nested error detail (dicts by field, lists by position, ErrorDetail leaves) as a flat list, each entry
    with the field's path (`variants[1].key`; "" for the object as a whole), the message and its code."""
    if isinstance(detail, Mapping):
        errors: list[dict[str, Any]] = []
        for name, sub in detail.items():
            if name == api_settings.NON_FIELD_ERRORS_KEY:  # Django's "__all__" arrives under this key too
                path = prefix
            else:  # a list serializer's errors come keyed by position
                path = f"{prefix}[{name}]" if isinstance(name, int) else f"{prefix}.{name}".strip(".")
            errors += field_errors(sub, index=index, prefix=path)
        return errors
    if isinstance(detail, list) and not all(isinstance(item, str) for item in detail):
        return [e for i, sub in enumerate(detail) for e in field_errors(sub, index=index, prefix=f"{prefix}[{i}]")]
    messages = detail if isinstance(detail, list) else [detail]
    located = {} if index is None else {"index": index}
    return [
        {**located, "field": prefix, "message": str(message), "code": getattr(message, "code", None) or "invalid"}
        for message in messages
    ]


def error_body(*, detail: str, code: str, errors: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": list(errors)}


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    text = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"Invalid input: {text}{more}"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error answered in the one shape above (REST_FRAMEWORK["EXCEPTION_HANDLER"])."""
    if isinstance(exc, DjangoValidationError):  # a service refused the input: a 400 like a serializer's
        exc = exceptions.ValidationError(get_error_detail(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, InvalidBatch):
        response.data = error_body(detail=exc.summary, code="invalid", errors=exc.errors)
    elif isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail) or [{"field": "", "message": "Invalid input.", "code": "invalid"}]
        response.data = error_body(detail=_summary(errors), code="invalid", errors=errors)
    else:
        message = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = error_body(detail=str(message), code=getattr(message, "code", None) or "error")
    return response


# The schema of every error answer (an inline serializer: a declared field named `errors` would shadow
# Serializer.errors).
ERROR_SCHEMA = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(help_text="What went wrong, in a sentence"),
        "code": serializers.CharField(help_text="Stable, e.g. invalid, not_found, conflict, payload_too_large"),
        "errors": inline_serializer(
            "FieldError",
            {
                "index": serializers.IntegerField(required=False, help_text="The item of a batch (from 0)"),
                "field": serializers.CharField(help_text='The field\'s path, e.g. "variants[1].key"; "" for the whole'),
                "message": serializers.CharField(),
                "code": serializers.CharField(help_text="Stable, e.g. required, invalid, max_length, invalid_choice"),
            },
            many=True,
        ),
    },
)


def error_responses(*codes: int, described: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """An endpoint's error responses for its schema, all in the one shape: error_responses(400, 404)."""
    described = described or {}
    return {code: OpenApiResponse(ERROR_SCHEMA, description=described.get(code, "")) for code in codes}


def batch_items(request: Request, *, limit: int) -> list[Any]:
    """The items of a batch request's body: one JSON object or a non-empty list of at most `limit`; BadRequest
    otherwise. Every endpoint that writes a batch reads it so."""
    if request.stream is None:  # DRF reads an empty body as {}
        raise BadRequest("The request body is empty; send a JSON object or a list of objects.", code="body_empty")
    data = request.data
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise BadRequest("Expected a JSON object or a list of objects.", code="not_a_batch")
    if not items:
        raise BadRequest("The batch is empty; send at least one item.", code="batch_empty")
    if len(items) > limit:
        raise BadRequest(f"A batch holds at most {limit} items; this one has {len(items)}.", code="batch_too_large")
    return items
