"""Making, changing and testing destinations; replaying deliveries. The pages (and, later, the API) call these."""

import base64
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.activation.models import (
    SUBSCRIBABLE,
    Delivery,
    DeliveryState,
    Destination,
    DestinationState,
    EventType,
)
from campaigns.activation.tasks import deliveries_send_on_commit
from clm.base.history import audit_as
from clm.base.outbound import url_problem
from lifecycle.models import LifecycleModel


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _checked(name: str, url: str, event_types: list[str]) -> None:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = [_("Give the destination a name.")]
    problem = url_problem(url)
    if problem:
        errors["url"] = [problem]
    unknown = sorted(set(event_types) - set(SUBSCRIBABLE))
    if unknown:
        errors["event_types"] = [_("Unknown events: %(events)s.") % {"events": ", ".join(unknown)}]
    if errors:
        raise ValidationError(errors)


def destination_save(
    *,
    destination: Destination | None,
    name: str,
    url: str,
    event_types: list[str],
    lifecycle_models: list[LifecycleModel],
    actor: Any,
) -> tuple[Destination, str | None]:
    """Create or change a webhook destination; returns it and, for a new one, its secret (shown once)."""
    _checked(name, url, event_types)
    if Destination.objects.filter(name=name.strip()).exclude(pk=getattr(destination, "pk", None)).exists():
        raise ValidationError({"name": _("Another destination has this name.")})
    secret = None
    with transaction.atomic():
        if destination is None:
            secret = new_secret()
            destination = Destination(secrets=[{"secret": secret, "until": None}])
        destination.name, destination.url, destination.event_types = name.strip(), url.strip(), list(event_types)
        audit_as(destination, actor=actor, reason="destination saved")
        destination.save()
        destination.lifecycle_models.set(lifecycle_models)
    return destination, secret


def secret_rotate(*, destination: Destination, actor: Any) -> str:
    """A new secret (returned, shown once); the old one signs too for CLM_WEBHOOK_SECRET_OVERLAP_HOURS, so the
    receiver keeps verifying while it is told the new one."""
    until = (timezone.now() + timedelta(hours=settings.CLM_WEBHOOK_SECRET_OVERLAP_HOURS)).isoformat()
    secret = new_secret()
    kept = [entry for entry in destination.secrets or [] if entry.get("until") is None][:1]
    destination.secrets = [{"secret": secret, "until": None}, *({**entry, "until": until} for entry in kept)]
    audit_as(destination, actor=actor, reason="secret rotated")
    destination.save(update_fields=["secrets", "updated_at"])
    return secret


def destination_state_set(*, destination: Destination, active: bool, actor: Any) -> None:
    destination.state = DestinationState.ACTIVE if active else DestinationState.DISABLED
    destination.state_message = "" if active else _("Disabled by an admin.")
    audit_as(destination, actor=actor, reason="enabled" if active else "disabled")
    with transaction.atomic():
        destination.save(update_fields=["state", "state_message", "updated_at"])
        if active:  # what waited while it was off is due now
            deliveries_send_on_commit()


def destination_test_queue(*, destination: Destination) -> Delivery:
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.create(
            destination=destination,
            type=EventType.TEST,
            occurred_at=now,
            payload={"message": "A test event from CLM.", "destination": destination.name},
            next_attempt_at=now,
            created_at=now,
        )
        deliveries_send_on_commit()
    return delivery


def delivery_replay(*, delivery: Delivery) -> Delivery:
    """Send a delivered or failed delivery again, with its message id, as a fresh series of attempts."""
    if delivery.state == DeliveryState.PENDING:
        raise ValidationError(_("This delivery is still being tried."))
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, leased_until=None
        )
        deliveries_send_on_commit()
    delivery.refresh_from_db()
    return delivery
