"""Personal data (SPEC §2, §12): export everything CLM holds about one customer, or erase what identifies them.

Erasure anonymises in place (docs/PRIVACY.md): email and name are blanked, free text and event properties are
cleared, and the external id becomes an unguessable token, so nothing left points back to the person while the
orders, touchpoints, feedback scores and stage transitions stay. Every count, sum, funnel and cohort therefore
comes out the same after an erasure, and the shop sending the old id again creates a new customer.

Each table of per-customer rows is described once (`PersonalData`): what an export shows of its rows and which of
their fields an erasure clears. Apps above `lifecycle` register theirs in their AppConfig.ready with
`personal_data_register` (metrics' predictions, campaigns' experiment exposures), as they register rule features.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from clm.base.history import audit_as
from lifecycle.consent import consent_fields
from lifecycle.models import (
    ConsentChange,
    ConsentChannel,
    Customer,
    CustomerStage,
    Feedback,
    Order,
    StageTransition,
    Touchpoint,
)

# Room in the audit history's 100-character reason for the prefix and an API key's name (clm.base.history.audit_as).
REASON_MAX_LENGTH = 50


@dataclass(frozen=True)
class PersonalData:
    """A table of per-customer rows.

    `fields` maps each exported name to a field path (`channel__key` follows a relation); `cleared` maps the
    fields holding personal data to the blank value an erasure writes. Tables without personal fields are only
    exported: their rows describe the anonymised customer and keep the metrics built on them.
    """

    key: str
    model: type[models.Model]
    fields: dict[str, str]
    cleared: dict[str, Any] = field(default_factory=dict)

    def rows(self, customer: Customer) -> models.QuerySet:
        rows = self.model._default_manager.filter(customer=customer)
        return rows if rows.ordered else rows.order_by("pk")


PERSONAL_DATA: dict[str, PersonalData] = {}


def personal_data_register(data: PersonalData) -> PersonalData:
    PERSONAL_DATA[data.key] = data
    return data


personal_data_register(
    PersonalData(
        "orders",
        Order,
        {
            "external_id": "external_id",
            "placed_at": "placed_at",
            "amount": "amount",
            "status": "status",
            "channel": "channel__key",
            "campaign_code": "campaign_code",
            "created_at": "created_at",
            "updated_at": "updated_at",
        },
    )
)
personal_data_register(
    PersonalData(
        "touchpoints",
        Touchpoint,
        {
            "external_id": "external_id",
            "occurred_at": "occurred_at",
            "kind": "kind",
            "channel": "channel__key",
            "campaign_code": "campaign_code",
            "value": "value",
            "properties": "properties",
            "created_at": "created_at",
        },
        # Shops put whatever they track into properties (search terms, addresses, device ids).
        cleared={"properties": {}},
    )
)
personal_data_register(
    PersonalData(
        "feedback",
        Feedback,
        {
            "external_id": "external_id",
            "submitted_at": "submitted_at",
            "score": "score",
            "comment": "comment",
            "created_at": "created_at",
        },
        cleared={"comment": ""},
    )
)
personal_data_register(
    PersonalData("stages", CustomerStage, {"model": "model__key", "stage": "stage__key", "since": "since"})
)
personal_data_register(
    PersonalData(
        "transitions",
        StageTransition,
        {
            "model": "model__key",
            "from": "from_stage__key",
            "to": "to_stage__key",
            "at": "at",
            "cause": "cause",
            "run": "run",
        },
    )
)

personal_data_register(
    PersonalData(
        "consent_changes",
        ConsentChange,
        {
            "channel": "channel",
            "from": "from_state",
            "to": "to_state",
            "at": "at",
            "source": "source",
            "recorded_at": "recorded_at",
        },
        # The shop's free text: a form's name, but sometimes an address or a person's note.
        cleared={"source": ""},
    )
)
# The consent sources on the customer (and copies of them in its audit history) are cleared alike.
_CONSENT_SOURCES = {consent_fields(channel)[2]: "" for channel in ConsentChannel.values}


def _jsonable(data: Any) -> Any:
    """Dates as ISO 8601 (UTC as `Z`), decimals as strings: the API's own representation."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def customer_data_export(*, customer: Customer, actor: Any) -> dict[str, Any]:
    """Everything CLM holds about the customer, as JSON-ready data; the export is recorded in the customer's
    audit history (who: `actor`, a person or an API-key client). One query per table."""
    customer = Customer.objects.select_related("acquisition_channel", "referred_by").get(pk=customer.pk)
    data: dict[str, Any] = {
        "exported_at": timezone.now(),
        "customer": {
            "external_id": customer.external_id,
            "email": customer.email,
            "name": customer.name,
            "first_seen_at": customer.first_seen_at,
            "acquisition_channel": customer.acquisition_channel.key if customer.acquisition_channel else None,
            "referred_by": customer.referred_by.external_id if customer.referred_by else None,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
            "erased_at": customer.erased_at,
            **{name: getattr(customer, name) for channel in ConsentChannel.values for name in consent_fields(channel)},
        },
    }
    for key, table in PERSONAL_DATA.items():
        paths = table.fields
        data[key] = [
            {name: row[path] for name, path in paths.items()} for row in table.rows(customer).values(*paths.values())
        ]
    audit_as(customer, actor=actor, reason="personal data exported")
    Customer.history.bulk_history_create([customer], update=True)
    return _jsonable(data)


@dataclass
class Erasure:
    external_id: str
    erased_at: datetime
    already_erased: bool
    cleared: dict[str, int]
    kept: dict[str, int]


def customer_erase(*, customer: Customer, actor: Any, reason: str) -> Erasure:
    """Anonymise the customer in one transaction (docs/PRIVACY.md) and record who did it and why.

    Idempotent: erasing again changes nothing but clears whatever personal data arrived since (e.g. a batch
    that was in flight with the old id) and records the request again.
    """
    with transaction.atomic():
        # The row lock makes concurrent erasures of one customer wait for each other.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        erased_at = customer.erased_at
        already_erased = erased_at is not None
        if erased_at is None:
            customer.external_id = f"erased-{customer.pk}-{secrets.token_hex(4)}"
            customer.erased_at = erased_at = timezone.now()
        customer.email = customer.name = ""
        for name, blank in _CONSENT_SOURCES.items():
            setattr(customer, name, blank)
        cleared = {
            key: table.rows(customer).exclude(**table.cleared).update(**table.cleared)
            for key, table in PERSONAL_DATA.items()
            if table.cleared
        }
        # Copies of the old external id and consent sources: the customer's audit history and the admin's log.
        cleared["history_records"] = (
            Customer.history.filter(id=customer.pk)
            .exclude(external_id=customer.external_id, **_CONSENT_SOURCES)
            .update(external_id=customer.external_id, **_CONSENT_SOURCES)
        )
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
        ).exclude(object_repr=customer.external_id).update(object_repr=customer.external_id)
        audit_as(customer, actor=actor, reason=f"personal data erased: {reason[:REASON_MAX_LENGTH]}")
        customer.save()
        kept = {key: table.rows(customer).count() for key, table in PERSONAL_DATA.items()}
    return Erasure(
        external_id=customer.external_id,
        erased_at=erased_at,
        already_erased=already_erased,
        cleared=cleared,
        kept=kept,
    )
