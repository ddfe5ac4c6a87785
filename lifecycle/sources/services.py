"""Connecting, changing and disconnecting shop sources; the views, the admin and the commands call these."""

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from clm.base.history import audit_as
from clm.base.locks import job_lock, proves_exclusive
from lifecycle.models import Channel
from lifecycle.sources.http import answer_at_once
from lifecycle.sources.models import ImportState, Source, SourceStatus
from lifecycle.sources.platforms import PLATFORMS, CredentialsRejected, PlatformUnavailable
from lifecycle.sources.records import RULE_FIELDS, RULE_MATCHES
from lifecycle.sources.sync import import_lock
from lifecycle.sources.tasks import source_history_import

_RULE_LINE = re.compile(r"^\s*(?P<field>\w+)\s+(?P<match>\w+)(?:\s+(?P<value>\S+))?\s*->\s*(?P<channel>[\w-]+)\s*$")


def channel_rules_parse(text: str) -> list[dict[str, str]]:
    """Rules written one per line, `field match [value] -> channel` (e.g. `utm_medium equals cpc -> paid_ads`)."""
    channels = set(Channel.objects.values_list("key", flat=True))
    rules, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _RULE_LINE.match(line)
        if found is None:
            errors.append(_("Line %(line)d: write `field match value -> channel`.") % {"line": number})
            continue
        rule = {name: found[name] or "" for name in ("field", "match", "value", "channel")}
        if rule["field"] not in RULE_FIELDS:
            errors.append(
                _("Line %(line)d: unknown field %(field)s; the fields are %(fields)s.")
                % {"line": number, "field": rule["field"], "fields": ", ".join(RULE_FIELDS)}
            )
        elif rule["match"] not in RULE_MATCHES:
            errors.append(
                _("Line %(line)d: unknown match %(match)s; use %(matches)s.")
                % {"line": number, "match": rule["match"], "matches": ", ".join(RULE_MATCHES)}
            )
        elif rule["match"] != "empty" and not rule["value"]:
            errors.append(_("Line %(line)d: %(match)s needs a value.") % {"line": number, "match": rule["match"]})
        elif rule["channel"] not in channels:
            errors.append(
                _("Line %(line)d: unknown channel %(channel)s.") % {"line": number, "channel": rule["channel"]}
            )
        else:
            rules.append(rule)
    if errors:
        raise ValidationError(errors)
    return rules


def channel_rules_format(rules: list[dict[str, str]]) -> str:
    return "\n".join(
        " ".join(part for part in (rule["field"], rule["match"], rule.get("value", "")) if part)
        + f" -> {rule['channel']}"
        for rule in rules
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def shop_url_validate(url: str) -> str:
    """Credentials travel only over HTTPS (plain HTTP only to this machine, for a shop running beside CLM)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
        raise ValidationError({"shop_url": _("Use the shop's https:// address: the credentials travel with it.")})
    return url.rstrip("/")


def _credentials_merge(platform: str, stored: dict[str, str], entered: dict[str, str]) -> dict[str, str]:
    """Entered values replace stored ones; a field left blank keeps what is stored. One of the platform's credential
    sets must end up complete; values of the other sets are dropped, so no stale secret stays behind."""
    adapter = PLATFORMS[platform]
    merged = {name: (entered.get(name) or stored.get(name) or "").strip() for name in adapter.credential_fields}
    # A set the admin typed into wins over one that was only stored.
    ordered = sorted(adapter.credential_sets, key=lambda names: not any(entered.get(name) for name in names))
    for names in ordered:
        if all(merged[name] for name in names):
            return {name: merged[name] for name in names}
    first = ordered[0]
    raise ValidationError({name: _("Required.") for name in first if not merged[name]})


EDITABLE_FIELDS = [
    "name",
    "shop_url",
    "currency",
    "credentials",
    "webhook_secret",
    "id_prefix",
    "completed_statuses",
    "channel_rules",
]


def source_save(
    *,
    source: Source | None,
    actor: Any,
    platform: str,
    name: str,
    shop_url: str,
    currency: str,
    credentials: dict[str, str],
    webhook_secret: str = "",
    id_prefix: str = "",
    completed_statuses: list[str] | None = None,
    channel_rules: list[dict[str, str]] | None = None,
) -> Source:
    """Create a source (source=None) or change one. Secrets left blank keep their stored value."""
    if platform not in PLATFORMS:
        raise ValidationError({"platform": _("Unknown platform.")})
    adapter = PLATFORMS[platform]
    stored = source or Source(platform=platform)
    if source is not None and source.platform != platform:
        raise ValidationError({"platform": _("A source's platform cannot change; connect a new source.")})
    stored.name = name.strip()
    stored.shop_url = shop_url_validate(shop_url)
    stored.currency = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", stored.currency):
        raise ValidationError({"currency": _("Give the ISO 4217 code, e.g. EUR.")})
    stored.credentials = _credentials_merge(platform, stored.credentials or {}, credentials)
    if webhook_secret.strip():
        stored.webhook_secret = webhook_secret.strip()
    stored.id_prefix = id_prefix.strip()
    if Source.objects.exclude(pk=stored.pk).filter(id_prefix=stored.id_prefix).exists():
        raise ValidationError(
            {"id_prefix": _("Another source uses this id prefix: give each shop its own, e.g. de- and at-.")}
        )
    if Source.objects.exclude(pk=stored.pk).filter(name=stored.name).exists():
        raise ValidationError({"name": _("Another source has this name.")})
    stored.completed_statuses = (
        completed_statuses if completed_statuses is not None else list(adapter.default_completed_statuses)
    )
    stored.channel_rules = channel_rules if channel_rules is not None else list(adapter.default_channel_rules)
    if stored.status == SourceStatus.REJECTED and credentials:
        stored.status, stored.status_message = SourceStatus.NEW, ""
    audit_as(stored, actor=actor, reason="source saved")
    # An import may be writing its progress into the row: a change saves only the fields it edits.
    stored.save(update_fields=None if source is None else [*EDITABLE_FIELDS, "status", "status_message", "updated_at"])
    return stored


def source_connection_check(*, source: Source) -> Source:
    """Ask the shop whether it takes the credentials; the answer becomes the source's status."""
    try:
        with answer_at_once():  # an admin waits for this answer: no retries with backoff
            PLATFORMS[source.platform].client(source).connection_check()
    except CredentialsRejected as exc:
        source.status, source.status_message = SourceStatus.REJECTED, str(exc)
    except PlatformUnavailable as exc:
        source.status, source.status_message = SourceStatus.FAILING, str(exc)
    else:
        source.status, source.status_message = SourceStatus.CONNECTED, ""
    source.save(update_fields=["status", "status_message", "updated_at"])
    return source


def history_import_queue(*, source: Source, actor: Any) -> Source:
    """Queue the history import: it resumes from its checkpoint if one was stopped, and imports the whole history
    again (changing nothing that is unchanged) after one that is done. An import marked running whose job is gone
    (a worker killed under it) is queued again."""
    running_without_job = source.import_state == ImportState.RUNNING and _import_job_gone(source)
    with transaction.atomic():
        # The import writes its progress meanwhile: decide on the stored row, and write only what is decided.
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.status in (SourceStatus.DISCONNECTED, SourceStatus.REJECTED):
            raise ValidationError(_("Fix the connection first: the shop refused the credentials or is disconnected."))
        if source.import_state == ImportState.QUEUED or (
            source.import_state == ImportState.RUNNING and not running_without_job
        ):
            return source
        fields = ["import_state"]
        if source.import_state == ImportState.DONE:
            source.import_checkpoint, source.import_started_at, source.import_total = {}, None, None
            source.customers_imported = source.orders_imported = source.items_skipped = 0
            fields += ["import_checkpoint", "import_started_at", "import_total"]
            fields += ["customers_imported", "orders_imported", "items_skipped"]
        source.import_state = ImportState.QUEUED
        audit_as(source, actor=actor, reason="history import queued")
        source.save(update_fields=fields)
        source_id = source.pk
        transaction.on_commit(lambda: source_history_import.delay(source_id))
    return source


def _import_job_gone(source: Source) -> bool:
    """True when no job holds the source's import lock (provable on PostgreSQL only: elsewhere assume it runs)."""
    if not proves_exclusive():
        return False
    with job_lock(import_lock(source.pk)) as acquired:
        return acquired


def source_disconnect(*, source: Source, actor: Any) -> Source:
    """Stop taking data from the shop: webhooks are refused (410), syncs stop; the data already in stays."""
    source.status, source.status_message = SourceStatus.DISCONNECTED, ""
    audit_as(source, actor=actor, reason="source disconnected")
    source.save(update_fields=["status", "status_message", "updated_at"])
    return source
