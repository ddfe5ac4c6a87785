"""`Idempotency-Key` for the ingestion endpoints (docs/API.md#idempotency).

A client that resends a request after a timeout or a dropped connection cannot know whether the first one
was written. With `Idempotency-Key: <key>`, the first request claims the key by inserting a row under a
unique (client, key) constraint, committed before the request runs, so a concurrent duplicate fails to
insert it and gets 409. A 2xx answer is stored in the same transaction as the rows it reports, and a
replay of the same request gets that answer back without running again; the same key on a different
request gets 422. Any other outcome (a 4xx, which writes nothing, a 5xx or an exception) releases the key,
so the client can fix the cause and retry with the same key.
"""

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from clm.base.api_errors import BadRequest, Conflict
from clm.base.models import ApiKey, IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = timedelta(hours=24)
# A claim still in flight after this long belongs to a process that died mid-request (a batch takes seconds).
IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, like Stripe's keys (a UUID fits)
_VALID_KEY = re.compile(KEY_PATTERN)


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this request runs
    REPLAY = "replay"  # the same request already finished: answer as it was answered
    IN_FLIGHT = "in_flight"  # the same key is running now
    MISMATCH = "mismatch"  # the key was used for a different request


def request_client(request: Request) -> str:
    """Keys are scoped to whoever sent them: an API key (by its unique prefix) or a logged-in user."""
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.prefix}"
    return f"user:{request.user.pk}"


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """SHA-256 of the method, path and parsed body (so whitespace and key order do not matter)."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def idempotency_key_claim(*, client: str, key: str, fingerprint: str) -> tuple[ClaimOutcome, IdempotencyKey | None]:
    """Claim `key` for a request; or say why not, with the row that holds it."""
    now = timezone.now()
    # An expired key, or a claim abandoned by a process that died, is free again.
    IdempotencyKey.objects.filter(client=client, key=key).filter(
        Q(created_at__lt=now - KEY_TTL)
        | Q(status=IdempotencyKey.Status.IN_FLIGHT, created_at__lt=now - IN_FLIGHT_TIMEOUT)
    ).delete()
    try:
        with transaction.atomic():
            claim = IdempotencyKey.objects.create(client=client, key=key, fingerprint=fingerprint, created_at=now)
        return ClaimOutcome.CLAIMED, claim
    except IntegrityError:
        held = IdempotencyKey.objects.filter(client=client, key=key).first()
    if held is None:  # released by its failed request a moment ago: the client retries like for one in flight
        return ClaimOutcome.IN_FLIGHT, None
    if held.fingerprint != fingerprint:
        return ClaimOutcome.MISMATCH, held
    if held.status == IdempotencyKey.Status.IN_FLIGHT:
        return ClaimOutcome.IN_FLIGHT, held
    return ClaimOutcome.REPLAY, held


def idempotency_key_complete(*, claim: IdempotencyKey, response: Response) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        status=IdempotencyKey.Status.DONE, response_status=response.status_code, response_body=response.data
    )


def idempotency_key_release(*, claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, status=IdempotencyKey.Status.IN_FLIGHT).delete()


def idempotency_keys_expire() -> int:
    """Delete keys older than KEY_TTL; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEY_TTL).delete()
    return deleted


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Honour an `Idempotency-Key` header on an API view's method (a request without one runs as usual)."""

    @functools.wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(view, request, *args, **kwargs)
        if not _VALID_KEY.fullmatch(key):
            raise BadRequest(f"{HEADER} must be 1 to 255 visible ASCII characters, e.g. a UUID.", code="invalid_key")
        # A request being handled has its method (it is None only on a bare HttpRequest()).
        method = request.method or ""
        fingerprint = request_fingerprint(method=method, path=request.get_full_path(), data=request.data)
        outcome, claim = idempotency_key_claim(client=request_client(request), key=key, fingerprint=fingerprint)
        if outcome == ClaimOutcome.MISMATCH:
            raise KeyReused(
                f"{HEADER} {key!r} was already used for a different request in the last "
                f"{KEY_TTL.total_seconds() / 3600:.0f} hours; send a new key with a new request."
            )
        if outcome == ClaimOutcome.IN_FLIGHT or claim is None:
            raise Conflict(
                f"A request with {HEADER} {key!r} is still being processed; retry in a moment.", code="in_flight"
            )
        if outcome == ClaimOutcome.REPLAY:
            return Response(claim.response_body, claim.response_status, headers={REPLAYED_HEADER: "true"})
        try:
            # The stored answer commits with the rows it reports, or neither does.
            with transaction.atomic():
                response = view_method(view, request, *args, **kwargs)
                if status.is_success(response.status_code):
                    idempotency_key_complete(claim=claim, response=response)
        except BaseException:
            idempotency_key_release(claim=claim)
            raise
        if not status.is_success(response.status_code):
            idempotency_key_release(claim=claim)
        return response

    return wrapper
