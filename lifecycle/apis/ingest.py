"""Batch upserts of customers, orders, touchpoints, feedback (and the kinds other apps register): all or nothing."""

from django.conf import settings
from django.db import IntegrityError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api import CanWrite
from clm.base.api_errors import Conflict, InvalidBatch, batch_items, error_responses
from clm.base.idempotency import HEADER as IDEMPOTENCY_HEADER
from clm.base.idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from clm.base.idempotency import KEY_TTL, REPLAYED_HEADER, idempotent
from lifecycle.ingest import IngestKind, IngestRejected, records_ingest
from lifecycle.tasks import reclassify_customers_on_commit

_RESULT = inline_serializer(
    "IngestResult",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
        "results": inline_serializer(
            "IngestItemResult",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=["created", "updated", "unchanged"]),
                "id": serializers.IntegerField(),
                "key": serializers.DictField(),
            },
            many=True,
        ),
    },
)


class RecordsIngestApi(APIView):
    """Upsert one object or a list of up to CLM_INGEST_MAX_ITEMS; all or nothing."""

    kind: IngestKind
    permission_classes = [CanWrite]

    @idempotent
    def post(self, request: Request) -> Response:
        items = batch_items(request, limit=settings.CLM_INGEST_MAX_ITEMS)
        try:
            result = records_ingest(kind=self.kind, items=items)
        except IngestRejected as rejected:
            raise InvalidBatch(errors=[vars(error) for error in rejected.errors], items=len(items)) from None
        except IntegrityError:
            raise Conflict(
                "A concurrent request wrote the same records; nothing was written, retry.", code="concurrent_write"
            ) from None
        reclassify_customers_on_commit(result.touched_customer_ids)
        body = {
            "created": result.count("created"),
            "updated": result.count("updated"),
            "unchanged": result.count("unchanged"),
            "results": [vars(item) for item in result.items],
        }
        return Response(body, status.HTTP_201_CREATED if body["created"] else status.HTTP_200_OK)


def ingest_api(kind: IngestKind) -> type[RecordsIngestApi]:
    """The ingestion endpoint class of one kind, with its OpenAPI description."""
    schema = extend_schema(
        operation_id=f"{kind.name}_ingest",
        summary=f"Upsert {kind.name.replace('_', ' ')}",
        description=(
            f"Send one object or a list of up to {settings.CLM_INGEST_MAX_ITEMS}. The batch is validated whole: "
            "if any item is invalid nothing is written and every error is listed. Rows are matched by "
            f"{', '.join(kind.key_fields)}; resending an identical item reports it as unchanged."
        ),
        request=kind.serializer_class(many=True),
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="Optional, 1 to 255 visible ASCII characters (a UUID): resending the same request with "
                f"the same key within {KEY_TTL.total_seconds() / 3600:.0f} hours returns the first answer without "
                f"writing again (with `{REPLAYED_HEADER}: true`); the same key on a different request gets 422, "
                "while the first is still running 409.",
            )
        ],
        responses={200: _RESULT, 201: _RESULT, **error_responses(400, 409, 413, 422)},
        examples=[
            OpenApiExample(
                "errors",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "1 of 2 items are invalid; nothing was written.",
                    "code": "invalid",
                    "errors": [
                        {
                            "index": 1,
                            "field": "amount",
                            "message": "Ensure this value is greater than or equal to 0.",
                            "code": "min_value",
                        }
                    ],
                },
            )
        ],
        tags=["ingestion"],
    )

    # A fresh function per kind: extend_schema annotates the function object it decorates.
    def post(self: RecordsIngestApi, request: Request) -> Response:
        return RecordsIngestApi.post(self, request)

    name = f"{kind.name.title().replace('_', '')}IngestApi"
    return type(name, (RecordsIngestApi,), {"kind": kind, "post": schema(post)})
