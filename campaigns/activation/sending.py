"""Sending deliveries: claimed in batches, in order per customer and destination, signed as the Standard Webhooks
specification says (`webhook-id`, `webhook-timestamp`, `webhook-signature`: v1 HMAC-SHA256, by the
`standardwebhooks` library), retried on the specification's schedule, logged attempt by attempt.

A worker claims a batch by leasing it (LEASE): one that dies mid-batch lets it go when the lease runs out and another
sends it again, with the same message id (at least once; receivers deduplicate by `webhook-id`). A delivery waits
while an earlier one of the same customer for the same destination is pending, so a receiver sees a customer's
changes in the order they happened. A delivery whose every attempt failed is `failed` and disables its destination.
"""

import functools
import json
import logging
import ssl
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from standardwebhooks.webhooks import Webhook

from campaigns.activation.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    Destination,
    DestinationState,
    EventType,
)
from clm.base.outbound import TIMEOUT, OutboundRefused, outbound_post
from lifecycle.features import FEATURES, FeatureType
from lifecycle.sources.http import retry_after_seconds

logger = logging.getLogger(__name__)

# Seconds before each retry (Standard Webhooks' suggested schedule): the last attempt comes about 27 hours after
# the first, so a receiver down for a day loses nothing.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
LEASE = timedelta(minutes=2)
BATCH = 200
EXCERPT = 500
SEND_CONCURRENCY = 10  # requests in flight per worker process
STORE_EVERY = 20
LIMITS = httpx.Limits(max_connections=SEND_CONCURRENCY, max_keepalive_connections=SEND_CONCURRENCY)
RESULT_FIELDS = ("state", "attempts", "next_attempt_at", "leased_until", "delivered_at", "last_status", "last_error")


def _earlier_pending() -> Exists:
    return Exists(
        Delivery.objects.filter(
            destination=OuterRef("destination"),
            customer=OuterRef("customer"),
            id__lt=OuterRef("id"),
            state=DeliveryState.PENDING,
        )
    )


def deliveries_claim(*, now: datetime, limit: int = BATCH) -> list[int]:
    """Lease up to `limit` due deliveries of active destinations, oldest first; returns their ids."""
    with transaction.atomic():
        due = (
            Delivery.objects.filter(
                state=DeliveryState.PENDING,
                next_attempt_at__lte=now,
                destination__state=DestinationState.ACTIVE,
            )
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .exclude(_earlier_pending())
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))
        )
        ids = list(due.values_list("pk", flat=True)[:limit])
        Delivery.objects.filter(pk__in=ids).update(leased_until=now + LEASE)
    return ids


def _days(value: Any, at: datetime) -> int | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=at.tzinfo)
    return (at - moment).days


def _features(values: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The rule features as the rules compare them (days for the days-since features)."""
    shown = {}
    for name, value in values.items():
        feature = FEATURES.get(name)
        shown[name] = _days(value, at) if feature is not None and feature.type == FeatureType.DAYS_SINCE else value
    return shown


def event_data(delivery: Delivery) -> dict[str, Any]:
    if delivery.type == EventType.STAGE_CHANGED:
        payload = delivery.payload
        return {
            "model": payload["model"],
            "from": payload["from"],
            "to": payload["to"],
            "at": delivery.occurred_at.isoformat(),
            "customer": {"external_id": delivery.customer.external_id if delivery.customer else None},
            "features": _features(payload.get("features") or {}, delivery.occurred_at),
        }
    return dict(delivery.payload)


def event_body(delivery: Delivery) -> bytes:
    """The JSON body: the event's type, when it happened and its data (the specification's payload structure)."""
    body = {"type": delivery.type, "timestamp": delivery.occurred_at.isoformat(), "data": event_data(delivery)}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def valid_secrets(destination: Destination, now: datetime) -> list[str]:
    return [
        entry["secret"]
        for entry in destination.secrets or []
        if not entry.get("until") or datetime.fromisoformat(entry["until"]) > now
    ]


def signed_headers(destination: Destination, delivery: Delivery, body: bytes, now: datetime) -> dict[str, str]:
    message_id = delivery.message_id
    signatures = [Webhook(secret).sign(message_id, now, body) for secret in valid_secrets(destination, now)]
    return {
        "content-type": "application/json",
        "user-agent": "CLM-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


@dataclass
class Outcome:
    at: datetime  # when the attempt started
    status: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _post(client: httpx.Client, destination: Destination, delivery: Delivery) -> Outcome:
    now = timezone.now()
    body = event_body(delivery)
    started = time.monotonic()
    try:
        headers = signed_headers(destination, delivery, body, now)
        response = outbound_post(client, destination.url, content=body, headers=headers)
    except OutboundRefused as exc:
        return Outcome(now, None, 0, error=str(exc))
    except httpx.HTTPError as exc:
        latency = round((time.monotonic() - started) * 1000)
        return Outcome(now, None, latency, error=f"{type(exc).__name__}: {exc}"[:EXCERPT])
    latency = round((time.monotonic() - started) * 1000)
    retry_after = retry_after_seconds(response.headers.get("retry-after"), 0.0) if response.status_code == 429 else None
    return Outcome(now, response.status_code, latency, excerpt=response.text[:EXCERPT], retry_after=retry_after)


def _store(results: list[tuple[Delivery, Outcome]]) -> None:
    """The attempts' results on their deliveries and in the log, in one transaction."""
    now = timezone.now()
    attempts = [_record(delivery, outcome, now) for delivery, outcome in results]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Not waiting for the disk at each of these frequent commits: a result lost in a database crash only
            # sends its event again, with its webhook-id, which receivers drop.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        for delivery, _ in results:  # one UPDATE each: bulk_update's CASE per row and field costs more to build
            Delivery.objects.filter(pk=delivery.pk).update(**{name: getattr(delivery, name) for name in RESULT_FIELDS})
        DeliveryAttempt.objects.bulk_create(attempts)


def _record(delivery: Delivery, outcome: Outcome, now: datetime) -> DeliveryAttempt:
    delivery.attempts += 1
    delivery.leased_until = None
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error or ("" if outcome.delivered else outcome.excerpt)
    if outcome.delivered:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, outcome.at
    elif delivery.attempts > len(RETRY_SCHEDULE):
        delivery.state = DeliveryState.FAILED
    else:
        wait = max(RETRY_SCHEDULE[delivery.attempts - 1], outcome.retry_after or 0)
        delivery.next_attempt_at = now + timedelta(seconds=wait)
    return DeliveryAttempt(
        delivery=delivery,
        at=outcome.at,
        status=outcome.status,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error[:EXCERPT],
    )


def destination_disable(destination: Destination, message: str) -> None:
    Destination.objects.filter(pk=destination.pk).update(state=DestinationState.DISABLED, state_message=message)
    logger.error("destination %s disabled: %s", destination.name, message)


@functools.cache
def _tls() -> ssl.SSLContext:
    """Certificates verified against the system's authorities, loaded once (50 ms each time otherwise)."""
    return ssl.create_default_context()


def deliveries_send_batch(ids: Iterable[int]) -> int:
    """Send the claimed deliveries, one HTTP session per destination; returns how many were delivered."""
    deliveries = list(
        Delivery.objects.filter(pk__in=list(ids)).select_related("destination", "customer").order_by("id")
    )
    clients = {
        destination_id: httpx.Client(timeout=TIMEOUT, follow_redirects=False, limits=LIMITS, verify=_tls())
        for destination_id in {delivery.destination_id for delivery in deliveries}
    }
    try:
        # Concurrently (a claimed batch holds at most one delivery per customer and destination, so order holds):
        # a receiver 50 ms away takes 10,000 events in a minute, not in eight. No query runs in the threads; results
        # are stored STORE_EVERY at a time, so a worker killed mid-batch repeats at most those and the ones in flight.
        with ThreadPoolExecutor(max_workers=SEND_CONCURRENCY) as pool:
            outcomes = pool.map(lambda d: _post(clients[d.destination_id], d.destination, d), deliveries)
            results: list[tuple[Delivery, Outcome]] = []
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                results.append((delivery, outcome))
                if len(results) == STORE_EVERY:
                    _store(results)
                    results = []
            _store(results)
    finally:
        for client in clients.values():
            client.close()
    for destination in {d.destination for d in deliveries if d.state == DeliveryState.FAILED}:
        destination_disable(
            destination,
            _(
                "Disabled: a delivery failed %(attempts)d times over a day (last answer: %(answer)s). Fix the "
                "receiver, then enable the destination: what is pending is sent then."
            )
            % {"attempts": len(RETRY_SCHEDULE) + 1, "answer": _last_answer(deliveries, destination)},
        )
    return sum(1 for delivery in deliveries if delivery.state == DeliveryState.DELIVERED)


def _last_answer(deliveries: list[Delivery], destination: Destination) -> str:
    failed = [d for d in deliveries if d.destination == destination and d.state == DeliveryState.FAILED][-1]
    return str(failed.last_status) if failed.last_status else failed.last_error or "none"


def deliveries_send_due() -> int:
    """Send every due delivery; returns how many were delivered."""
    delivered = 0
    while ids := deliveries_claim(now=timezone.now()):
        delivered += deliveries_send_batch(ids)
    return delivered


def next_due_in(now: datetime) -> float | None:
    """Seconds until the next sendable delivery is due (None: none waits): pending, of an active destination, not
    behind an earlier one of its customer, not in another worker's hands."""
    waiting = (
        Delivery.objects.filter(state=DeliveryState.PENDING, destination__state=DestinationState.ACTIVE)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .exclude(_earlier_pending())
    )
    upcoming = waiting.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    return None if upcoming is None else max((upcoming - now).total_seconds(), 1.0)
