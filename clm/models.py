from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class ApiKey(AbstractAPIKey):
    """A REST client's key: only its SHA-512 hash and 8-character prefix are stored."""

    scope_read = models.BooleanField("read scope", default=True)
    scope_write = models.BooleanField("write scope", default=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope_read=True) | models.Q(scope_write=True), name="api_key_has_a_scope"
            )
        ]

    @property
    def scopes(self) -> list[str]:
        return [scope for scope, held in (("read", self.scope_read), ("write", self.scope_write)) if held]


class WorkerHeartbeat(models.Model):
    """Last run of the periodic heartbeat task: proves that beat schedules and a worker executes."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
