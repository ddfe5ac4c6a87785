from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey
from simple_history.models import HistoricalRecords

from clm.base.history import history_user


class ApiKey(AbstractAPIKey):
    """A REST client's key: only its SHA-512 hash and 8-character prefix are stored."""

    scope_read = models.BooleanField("read scope", default=True)
    scope_write = models.BooleanField("write scope", default=False)
    scope_admin = models.BooleanField(
        "admin scope", default=False, help_text="Export and erase a customer's personal data (docs/PRIVACY.md)"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Creation, scope changes and revocation kept with who and when. Left out: the hash (of no use to a reader) and
    # the use time (it changes on its own, through update(), which the history does not see anyway).
    history = HistoricalRecords(get_user=history_user, excluded_fields=["hashed_key", "last_used_at"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope_read=True) | models.Q(scope_write=True) | models.Q(scope_admin=True),
                name="api_key_has_a_scope",
            )
        ]

    @property
    def scopes(self) -> list[str]:
        held = (("read", self.scope_read), ("write", self.scope_write), ("admin", self.scope_admin))
        return [scope for scope, has in held if has]


class WorkerHeartbeat(models.Model):
    """Last run of the periodic heartbeat task: proves that beat schedules and a worker executes."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a client sent with an ingestion request, and the answer it got (clm/idempotency.py).

    The row is inserted, under the unique constraint, before the request runs: a concurrent duplicate fails to
    insert it. Rows expire after clm.base.idempotency.KEY_TTL.
    """

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "in flight"
        DONE = "done", "done"

    client = models.CharField(max_length=100, help_text="key:<API key prefix> or user:<user id>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique_per_client")]

    def __str__(self) -> str:
        return f"{self.client} {self.key} ({self.status})"
