"""API keys and worker heartbeats: the records the shared plumbing keeps (clm.base.api, clm.base.health)."""

from datetime import timedelta
from typing import cast

from django.utils import timezone

from clm.base.models import ApiKey, WorkerHeartbeat

# Recording every request would turn each API read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


# read: pull data; write: push data; admin: export and erase a customer's personal data (docs/PRIVACY.md).
API_KEY_SCOPES = ("read", "write", "admin")


def api_key_create(*, name: str, scopes: set[str]) -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    unknown = scopes - set(API_KEY_SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(API_KEY_SCOPES)}; got {sorted(scopes)}")
    flags = {f"scope_{scope}": scope in scopes for scope in API_KEY_SCOPES}
    key, plain = ApiKey.objects.create_key(name=name, **flags)
    # djangorestframework-api-key types create_key as returning its abstract base; it builds the manager's model.
    return cast(ApiKey, key), plain


def api_key_mark_used(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_PRECISION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


def heartbeat_record(*, name: str, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now(), "hostname": hostname}
    )
    return heartbeat
