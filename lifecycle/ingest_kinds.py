"""The four kinds of lifecycle data a shop sends in, and how each item is validated.

Field names here are the API's and the CSV columns' names (docs/IMPORT.md).
"""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lifecycle.consent import consent_changes_ingested, consent_unsubscription_kept
from lifecycle.ingest import (
    INGEST_KINDS,
    SURROGATE_CHARACTER,
    WRITE_CHUNK,
    IngestKind,
    IngestSerializer,
    ItemError,
    ValidItem,
    customer_ids_by_external_id,
    ingest_kind_register,
)
from lifecycle.models import ConsentState, Customer, Feedback, Order, OrderStatus, Touchpoint, TouchpointKind
from lifecycle.services import customers_mark_changed

EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=UTC)
# Shops' clocks drift; an event more than this far ahead of ours is a data error.
FUTURE_TOLERANCE = timedelta(days=1)


class EventTimeField(serializers.DateTimeField):
    """ISO 8601 date-time or plain date (midnight UTC); not before 1970, not in the future."""

    def __init__(self, **kwargs: Any) -> None:
        # UTC named here, not looked up per value as the current time zone (always UTC here: TIME_ZONE, never
        # activated): a large import validates hundreds of thousands of times.
        super().__init__(input_formats=["iso-8601", "%Y-%m-%d"], default_timezone=UTC, **kwargs)

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        if parsed < EARLIEST_EVENT:
            raise serializers.ValidationError("Date is before 1970-01-01.")
        if parsed > timezone.now() + FUTURE_TOLERANCE:
            raise serializers.ValidationError("Date is in the future.")
        return parsed


@extend_schema_field(OpenApiTypes.STR)
class ChannelKeyField(serializers.Field):
    """A channel named by its key; validated against the channels loaded once per batch, stored as its id."""

    def to_internal_value(self, value: Any) -> int:
        channel_ids: dict[str, int] = self.context["channel_ids"]
        if not isinstance(value, str) or value not in channel_ids:
            raise serializers.ValidationError(f"Unknown channel {value!r}; known: {', '.join(sorted(channel_ids))}.")
        return channel_ids[value]

    def to_representation(self, value: Any) -> Any:
        return value


class PropertiesField(serializers.JSONField):
    """A JSON object; CSV cells carry it as JSON text. Only what PostgreSQL's jsonb stores faithfully."""

    def to_internal_value(self, value: Any) -> dict:
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_constant=_refuse_constant) if value else {}
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.") from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        problem = _unstorable_json(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(binary=True, **kwargs)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _unstorable_json(value: Any) -> str | None:
    """Why jsonb cannot store `value` as sent (NUL, a lone surrogate, NaN or infinity), naming where; or None.

    Iterative: a body nested as deep as the JSON parser allows must not exhaust the stack here.
    """
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, dict):
            for name, item in node.items():
                problem = _unstorable_text(name)
                if problem:
                    return f"A name {problem} (in {path or 'the object'})."
                pending.append((f"{path}.{name}" if path else name, item))
        elif isinstance(node, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(node))
        elif isinstance(node, str):
            problem = _unstorable_text(node)
            if problem:
                return f"The text at {path} {problem}."
        elif isinstance(node, float) and not math.isfinite(node):
            return f"The number at {path} is not finite."
    return None


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if SURROGATE_CHARACTER.search(text):
        return "contains a lone surrogate character"
    return None


def external_id_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=100, **kwargs)


def campaign_code_field() -> serializers.CharField:
    return serializers.CharField(max_length=100, required=False, allow_blank=True)


class CustomerEventSerializer(IngestSerializer):
    """Fields every customer event carries: which customer, and whether to create them when unknown."""

    customer_external_id = external_id_field()
    create_customer = serializers.BooleanField(required=False)


def source_updated_at_field() -> EventTimeField:
    return EventTimeField(
        required=False,
        allow_null=True,
        help_text="When the source last changed the record: a record sent again with an earlier time is left as it "
        "is (out-of-order webhooks and syncs never roll it back)",
    )


def consent_source_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Where the consent was given, e.g. checkout"
    )


class CustomerIngestSerializer(IngestSerializer):
    extra_fields = ("referred_by_external_id",)

    external_id = external_id_field()
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    first_seen_at = EventTimeField(required=False)
    acquisition_channel = ChannelKeyField(source="acquisition_channel_id", required=False, allow_null=True)
    referred_by_external_id = external_id_field(required=False, allow_null=True)
    email_consent = serializers.ChoiceField(choices=ConsentState.choices, required=False)
    email_consent_at = EventTimeField(required=False, allow_null=True)
    email_consent_source = consent_source_field()
    sms_consent = serializers.ChoiceField(choices=ConsentState.choices, required=False)
    sms_consent_at = EventTimeField(required=False, allow_null=True)
    sms_consent_source = consent_source_field()
    source_updated_at = source_updated_at_field()


class OrderIngestSerializer(CustomerEventSerializer):
    external_id = external_id_field()
    placed_at = EventTimeField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    channel = ChannelKeyField(source="channel_id", required=False, allow_null=True)
    campaign_code = campaign_code_field()
    source_updated_at = source_updated_at_field()


class TouchpointIngestSerializer(CustomerEventSerializer):
    external_id = external_id_field(required=False)
    occurred_at = EventTimeField()
    channel = ChannelKeyField(source="channel_id")
    kind = serializers.ChoiceField(choices=TouchpointKind.choices)
    campaign_code = campaign_code_field()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    properties = PropertiesField(required=False)


class FeedbackIngestSerializer(CustomerEventSerializer):
    external_id = external_id_field(required=False)
    score = serializers.IntegerField(min_value=0, max_value=10)
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    submitted_at = EventTimeField()


def _referrer_errors(items: list[ValidItem]) -> list[ItemError]:
    """A referrer must exist already or arrive in the same batch, and is never the customer itself."""
    in_batch = {item.values["external_id"] for item in items}
    named = {referrer for item in items if (referrer := item.extra.get("referred_by_external_id")) is not None}
    known = set(customer_ids_by_external_id(named - in_batch)) | in_batch
    errors = []
    for item in items:
        referrer = item.extra.get("referred_by_external_id")
        if referrer is None:
            continue
        if referrer == item.values["external_id"]:
            errors.append(
                ItemError(item.index, "referred_by_external_id", "A customer cannot refer themselves.", "self_referral")
            )
        elif referrer not in known:
            errors.append(
                ItemError(item.index, "referred_by_external_id", f"Unknown customer {referrer!r}.", "unknown_customer")
            )
    return errors


def _referrers_link(items: list[ValidItem]) -> set[int]:
    """Set referred_by once every customer of the batch exists; returns the indexes of changed items."""
    wanted = {
        item.values["external_id"]: item.extra["referred_by_external_id"]
        for item in items
        if "referred_by_external_id" in item.extra
    }
    if not wanted:
        return set()
    ids = customer_ids_by_external_id(set(wanted) | {ref for ref in wanted.values() if ref})
    referred = [ids[ext] for ext in wanted]
    changed, former_referrers = [], []
    for start in range(0, len(referred), WRITE_CHUNK):
        customers = Customer.objects.filter(pk__in=referred[start : start + WRITE_CHUNK])
        for external_id, customer_id, referred_by_id in customers.values_list("external_id", "pk", "referred_by_id"):
            referrer = wanted[external_id]
            referrer_id = ids[referrer] if referrer else None
            if referred_by_id != referrer_id:
                changed.append(Customer(pk=customer_id, external_id=external_id, referred_by_id=referrer_id))
                if referred_by_id is not None:
                    former_referrers.append(referred_by_id)
    Customer.objects.bulk_update(changed, ["referred_by_id"], batch_size=WRITE_CHUNK)
    customers_mark_changed(customer_ids=former_referrers)  # their referral counts drop
    changed_ext = {customer.external_id for customer in changed}
    return {item.index for item in items if item.values["external_id"] in changed_ext}


CUSTOMERS = ingest_kind_register(
    IngestKind(
        name="customers",
        model=Customer,
        serializer_class=CustomerIngestSerializer,
        create_defaults=lambda: {"first_seen_at": timezone.now()},
        version_field="source_updated_at",
        keep_stored=consent_unsubscription_kept,
        validate_batch=_referrer_errors,
        after_write=_referrers_link,
        on_changes=consent_changes_ingested,
    )
)
ORDERS = ingest_kind_register(
    IngestKind(
        name="orders",
        model=Order,
        serializer_class=OrderIngestSerializer,
        event_time_field="placed_at",
        version_field="source_updated_at",
    )
)
TOUCHPOINTS = ingest_kind_register(
    IngestKind(
        name="touchpoints",
        model=Touchpoint,
        serializer_class=TouchpointIngestSerializer,
        event_time_field="occurred_at",
        derive_external_id=True,
    )
)
FEEDBACK = ingest_kind_register(
    IngestKind(
        name="feedback",
        model=Feedback,
        serializer_class=FeedbackIngestSerializer,
        event_time_field="submitted_at",
        derive_external_id=True,
    )
)

__all__ = ["CUSTOMERS", "FEEDBACK", "INGEST_KINDS", "ORDERS", "TOUCHPOINTS"]
