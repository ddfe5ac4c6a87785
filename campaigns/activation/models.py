"""Destinations (where CLM sends events) and deliveries (one event for one destination: the outbox).

A delivery is written in the same transaction as what it reports (a stage change), so a worker that dies between
the commit and the send loses nothing; workers send the pending ones, in order per customer and destination, and
retry with backoff. Its message id is the same on every attempt, so receivers deduplicate by it.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from clm.base.crypto import EncryptedJSONField
from clm.base.history import history_user
from lifecycle.models import Customer, LifecycleModel


class DestinationKind(models.TextChoices):
    WEBHOOK = "webhook", _("webhook")


class DestinationState(models.TextChoices):
    ACTIVE = "active", _("active")
    DISABLED = "disabled", _("disabled")


class EventType(models.TextChoices):
    STAGE_CHANGED = "customer.stage_changed", _("a customer's stage changed")
    TEST = "test", _("test event")


SUBSCRIBABLE = [EventType.STAGE_CHANGED]


class Destination(models.Model):
    """A receiver of CLM's events. Its signing secrets are encrypted at rest and shown once, when made."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=DestinationKind.choices, default=DestinationKind.WEBHOOK)
    url = models.URLField(_("address"), max_length=2000, help_text=_("Where the events are posted (https)"))
    # [{"secret": "whsec_…", "until": ISO time or null}], newest first: events are signed with each one still valid,
    # so a receiver keeps verifying with the old secret until it has the new one (rotation with an overlap).
    secrets = EncryptedJSONField(default=list, blank=True)
    event_types = models.JSONField(_("events"), default=list, blank=True)
    lifecycle_models = models.ManyToManyField(
        LifecycleModel,
        verbose_name=_("lifecycle models"),
        blank=True,
        related_name="+",
        help_text=_("Stage changes of these models; none chosen: of every model"),
    )
    state = models.CharField(
        _("state"), max_length=20, choices=DestinationState.choices, default=DestinationState.ACTIVE
    )
    state_message = models.TextField(_("state message"), blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(get_user=history_user, excluded_fields=["secrets", "updated_at"])

    class Meta:
        verbose_name = _("destination")
        verbose_name_plural = _("destinations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")  # every attempt of the schedule failed: replay it by hand


class Delivery(models.Model):
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    type = models.CharField(max_length=40, choices=EventType.choices)
    # The customer the event is about; their external id is read when it is sent (an erased one's is their token).
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker sending it holds it until then; one that died lets it go when the lease runs out.
    leased_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["destination", "customer", "id"], name="delivery_customer_order"),
        ]

    def __str__(self) -> str:
        return f"{self.type} → {self.destination_id} ({self.state})"

    @property
    def message_id(self) -> str:
        """The `webhook-id`: the same on every attempt and replay, and telling nothing (a keyed hash of the row)."""
        digest = hmac.new(settings.SECRET_KEY.encode(), f"delivery:{self.pk}".encode(), hashlib.sha256).hexdigest()
        return f"msg_{digest[:32]}"


class DeliveryAttempt(models.Model):
    """One try of a delivery: the delivery log."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)  # None: no answer (refused, timed out)
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status or self.error}"
