from django.conf import settings
from django.db import IntegrityError
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.api import CanWrite
from lifecycle.ingest import IngestKind, IngestRejected, records_ingest
from lifecycle.tasks import reclassify_customers_on_commit

_ERROR = inline_serializer(
    "IngestError",
    {
        "detail": serializers.CharField(),
        "errors": inline_serializer(
            "IngestItemError",
            {"index": serializers.IntegerField(), "field": serializers.CharField(), "message": serializers.CharField()},
            many=True,
        ),
    },
)
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

    def post(self, request: Request) -> Response:
        payload = request.data
        items = [payload] if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            return Response({"detail": "Expected a JSON object or a list of objects."}, status.HTTP_400_BAD_REQUEST)
        if not items:
            return Response({"detail": "The batch is empty; send at least one item."}, status.HTTP_400_BAD_REQUEST)
        limit = settings.CLM_INGEST_MAX_ITEMS
        if len(items) > limit:
            return Response(
                {"detail": f"A batch holds at most {limit} items; this one has {len(items)}."},
                status.HTTP_400_BAD_REQUEST,
            )
        try:
            result = records_ingest(kind=self.kind, items=items)
        except IngestRejected as rejected:
            bad = len({error.index for error in rejected.errors})
            return Response(
                {
                    "detail": f"{bad} of {len(items)} items are invalid; nothing was written.",
                    "errors": [vars(error) for error in rejected.errors],
                },
                status.HTTP_400_BAD_REQUEST,
            )
        except IntegrityError:
            return Response(
                {"detail": "A concurrent request wrote the same records; nothing was written, retry."},
                status.HTTP_409_CONFLICT,
            )
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
        responses={200: _RESULT, 201: _RESULT, 400: _ERROR, 409: _ERROR, 413: _ERROR},
        examples=[
            OpenApiExample(
                "errors",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "1 of 2 items are invalid; nothing was written.",
                    "errors": [
                        {"index": 1, "field": "amount", "message": "Ensure this value is greater than or equal to 0."}
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
