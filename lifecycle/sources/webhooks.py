"""The webhook endpoint of each source: verify the platform's signature over the raw body before anything else,
store the delivery once (its id makes a repeat a no-op), answer at once; a worker writes it (sync.delivery_process).

Platforms retry deliveries that fail or time out and drop endpoints that stay slow, so the answer never waits for
the write. Answers use the API's one error shape.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clm.base.api_errors import error_body
from lifecycle.sources.models import Source, SourceDelivery, SourceUnavailable, source_at_address
from lifecycle.sources.platforms import PLATFORMS, WebhookRefused
from lifecycle.sources.tasks import delivery_process_on_commit


def _refusal(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(detail=detail, code=code), status=status)


@csrf_exempt
@login_not_required
@require_POST
def source_webhook(request: HttpRequest, token: str) -> JsonResponse:
    try:
        source = source_at_address(token)
    except SourceUnavailable as exc:
        return _refusal(exc.status, exc.code, exc.message)
    adapter = PLATFORMS[source.platform]
    body = request.body
    if adapter.ping is not None and adapter.ping(body, request.headers):
        return JsonResponse({"detail": "Pong: nothing stored."}, status=200)
    if not source.webhook_secret or not adapter.signature_valid(body, request.headers, source.webhook_secret):
        return _refusal(401, "invalid_signature", "The signature is missing or does not match this source's secret.")
    try:
        payload = json.loads(body)
    except ValueError:
        return _refusal(400, "parse_error", "The body is not JSON.")
    try:
        delivery = adapter.webhook_delivery(request.headers, payload)
    except WebhookRefused as exc:
        return _refusal(400, "webhook_refused", str(exc))
    try:
        with transaction.atomic():
            stored = SourceDelivery.objects.create(
                source=source, delivery_id=delivery.delivery_id, topic=delivery.topic, payload=payload
            )
            Source.objects.filter(pk=source.pk).update(last_webhook_at=timezone.now())
            delivery_process_on_commit(stored.pk)
    except IntegrityError:
        return JsonResponse({"detail": "Already received.", "delivery_id": delivery.delivery_id}, status=200)
    return JsonResponse({"detail": "Received.", "delivery_id": delivery.delivery_id}, status=200)
