"""What every endpoint of the API uses: the moment field, the stage serializer, model and customer lookups, the
customer cursor pages."""

import re
from datetime import UTC, date, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.days import day_end, day_start
from lifecycle.ingest_kinds import FUTURE_TOLERANCE
from lifecycle.models import LifecycleModel
from lifecycle.selectors import (
    lifecycle_model_default,
    lifecycle_model_get,
    lifecycle_model_keys,
)

_DATE_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """A date (YYYY-MM-DD, UTC) or an ISO 8601 date-time; more than a day ahead of the server's clock is refused.

    A date stands for the start of that day, or with `day_end` for its end (so `as_of=2025-01-31` includes
    everything that happened on the 31st).
    """

    def __init__(self, *, day_end: bool = False, **kwargs: Any) -> None:
        self.day_end = day_end
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime:
        text = data.strip() if isinstance(data, str) else ""
        moment: datetime | None
        try:
            if _DATE_DAY.fullmatch(text):
                moment = (day_end if self.day_end else day_start)(date.fromisoformat(text))
            else:
                moment = parse_datetime(text) if text else None
        except ValueError:
            moment = None
        if moment is None:
            raise serializers.ValidationError(
                f"{data!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 date-time (e.g. 2025-01-31T12:00:00Z)."
            )
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        if moment > timezone.now() + FUTURE_TOLERANCE:
            raise serializers.ValidationError(f"{text} is in the future.")
        return moment

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


# The stage fields every answer that lists stages shows, read from a stage as the selectors and computations hand it
# on (`name`: the English name; the pipeline, channel effectiveness); BilingualStageSerializer reads a Stage row. An
# endpoint that shows more adds its fields in a subclass; `Meta.fields` orders the fields it names (the others
# follow), so each answer keeps the field order it has always had. (The docstring is the schema's description.)
class StageSerializer(serializers.Serializer):
    """A stage of a lifecycle model."""

    key = serializers.CharField()
    name = serializers.CharField(help_text="The English name")
    kind = serializers.CharField(help_text="funnel or exit")
    position = serializers.IntegerField()

    class Meta:
        ref_name = "Stage"
        fields: tuple[str, ...] = ("key", "name", "kind", "position")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {**{name: fields[name] for name in getattr(self.Meta, "fields", ())}, **fields}


class BilingualStageSerializer(StageSerializer):
    # A Stage row: the English name is its `name_en`, and the German one is shown beside it.
    name = serializers.CharField(source="name_en", help_text="The English name")
    name_de = serializers.CharField()

    class Meta:
        ref_name = "BilingualStage"
        fields = ("key", "name", "name_de", "kind", "position")


def model_or_error(key: str | None) -> LifecycleModel:
    """The named model, or the default one; a ValidationError on `model` naming the problem."""
    model = lifecycle_model_get(key=key) if key else lifecycle_model_default()
    if model is not None:
        return model
    known = ", ".join(lifecycle_model_keys()) or "none"
    if key:
        raise serializers.ValidationError({"model": [f"Unknown model {key!r}; known: {known}."]})
    raise serializers.ValidationError({"model": [f"There is no default model; name one (known: {known})."]})


def model_not_found(key: str) -> NotFound:
    known = ", ".join(lifecycle_model_keys()) or "none"
    return NotFound(f"No lifecycle model with key {key!r}; known: {known}.")


def customer_not_found(external_id: str) -> NotFound:
    return NotFound(f"No customer with external_id {external_id!r}.")


class CustomerCursorPagination(CursorPagination):
    """Cursor pages by customer id (unique, the primary key's index): stable while customers are added, the same
    cost on every page; ?page_size= up to 1000."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Any:
        # DRF answers a malformed cursor with 404, as if the list were gone; it is bad input.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError({self.cursor_query_param: ["Invalid cursor; follow `next`."]}) from None


def paginated_response(*, view: APIView, request: Request, queryset: Any, serializer_class: type) -> Response:
    paginator = view.pagination_class()  # type: ignore[attr-defined]  # the views that page declare it
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
