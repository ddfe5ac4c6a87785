"""Marketing consent (issue 16): the log of its changes, and the filter exports apply.

A customer's consent per channel (email, SMS) is stored on the customer: state, since when, where it was given.
Ingestion writes customers in bulk, which records no audit-history rows, so every write path appends the state
changes it makes to ConsentChange: the customers ingest kind's `on_changes` hook (API, CSV, shop platforms) and
the admin's save. Exports of customers for marketing send only those subscribed on the channel asked for
(email unless the caller says otherwise) and say which in the file name (docs/CAMPAIGNS.md).
"""

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone
from rest_framework import serializers

from lifecycle.ingest import RowChange
from lifecycle.models import ConsentChange, ConsentChannel, ConsentState

M = TypeVar("M", bound=Model)
ExportConsent = Literal["email", "sms", "any"]
EXPORT_CONSENT_DEFAULT: ExportConsent = "email"


def consent_fields(channel: str) -> tuple[str, str, str]:
    """The customer's fields of one channel's consent: state, since, source."""
    return f"{channel}_consent", f"{channel}_consent_at", f"{channel}_consent_source"


# --- the change log -------------------------------------------------------------------------------


def consent_changes_log(writes: Iterable[tuple[int, Mapping[str, Any] | None, Mapping[str, Any]]]) -> int:
    """Append a ConsentChange for every consent state the writes changed, in one insert; return how many.

    A write is (customer id, the stored values before — None for a new customer —, the values written). Only the
    channels whose state was written count; the change's time and source are those written with it (empty when
    not sent). A new customer's default state (not subscribed) is no change.
    """
    now = timezone.now()
    rows = []
    for customer_id, before, after in writes:
        for channel in ConsentChannel.values:
            state, since, source = consent_fields(channel)
            if state not in after:
                continue
            old = before[state] if before is not None else ""
            new = after[state]
            if new == old or (before is None and new == ConsentState.NOT_SUBSCRIBED):
                continue
            rows.append(
                ConsentChange(
                    customer_id=customer_id,
                    channel=channel,
                    from_state=old,
                    to_state=new,
                    at=after.get(since),
                    source=after.get(source) or "",
                    recorded_at=now,
                )
            )
    ConsentChange.objects.bulk_create(rows)
    return len(rows)


def consent_unsubscription_kept(stored: Mapping[str, Any], values: dict[str, Any]) -> None:
    """An unsubscription stays when a write says "not subscribed": both mean no marketing, and a source that cannot
    tell them apart (a shop's CSV export says only yes or no) must not erase that the customer opted out."""
    for channel in ConsentChannel.values:
        fields = consent_fields(channel)
        if values.get(fields[0]) == ConsentState.NOT_SUBSCRIBED and stored.get(fields[0]) == ConsentState.UNSUBSCRIBED:
            for name in fields:
                values.pop(name, None)


def consent_changes_ingested(changes: list[RowChange]) -> None:
    """The customers ingest kind's hook: the stored row holds every field the item sent, its state included."""
    consent_changes_log((change.row_id, change.stored, change.item.values) for change in changes)


# --- exports --------------------------------------------------------------------------------------


def consent_export_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=["email", "sms", "any"],
        default=EXPORT_CONSENT_DEFAULT,
        help_text="Only customers subscribed to marketing on this channel (default: email); `any`: every customer, "
        "whatever their consent",
    )


def consented(rows: QuerySet[M], *, consent: ExportConsent, customer: str = "") -> QuerySet[M]:
    """The rows whose customer is subscribed on the `consent` channel (`any`: all rows); `customer` is the path
    from the rows to the customer (`customer__`), empty for customers themselves. A filter in the one query."""
    if consent == "any":
        return rows
    state, _, _ = consent_fields(consent)
    return rows.filter(**{f"{customer}{state}": ConsentState.SUBSCRIBED})


def consent_filename(stem: str, consent: ExportConsent) -> str:
    """The export's file name says whom it holds, so a file passed on still tells what it may be used for."""
    return f"{stem}-regardless-of-consent.csv" if consent == "any" else f"{stem}-{consent}-consented.csv"
