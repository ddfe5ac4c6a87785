"""Recording a campaign's spend for a day or a month, on its channel and under its code.

It writes through the marketing_spend ingest kind (campaigns/ingest_kinds.py), the one write path of spend: the same
checks and messages (a monthly date must be the first of its month), the same upsert by (channel, campaign code,
period, date) as the marketing-spend/ API and the CSV import.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from campaigns.ingest_kinds import MARKETING_SPEND
from campaigns.models import Campaign, MarketingSpend
from lifecycle.ingest import IngestRejected, records_ingest


@dataclass(frozen=True)
class SpendRecorded:
    spend: MarketingSpend
    status: str  # created, updated or unchanged


def campaign_spend_record_many(*, campaign: Campaign, entries: Sequence[Mapping[str, Any]]) -> list[SpendRecorded]:
    """Record the campaign's spend, each entry a {period, date, amount} for one day or month, on its channel and
    under its code, replacing what was recorded for that period and date; one SpendRecorded per entry, in order.

    The entries are validated whole and written in one transaction: if any is invalid, IngestRejected lists every
    problem with its entry's index and nothing is written. Sending the same spend again changes nothing.
    """
    items = [{**entry, "channel": campaign.channel.key, "campaign_code": campaign.code} for entry in entries]
    result = records_ingest(kind=MARKETING_SPEND, items=items)
    rows = MarketingSpend.objects.in_bulk([item.id for item in result.items])
    return [SpendRecorded(rows[item.id], item.status) for item in result.items]


def campaign_spend_record_status(
    *, campaign: Campaign, period: str, date: date | str, amount: Decimal | int | str
) -> SpendRecorded:
    """Record one day's or month's spend of the campaign (campaign_spend_record_many), also saying whether the row
    was created, updated or already so. Refused with a ValidationError naming each bad field: an unknown period, an
    unparseable date, a date before 1970 or in the future, a monthly date not on the first of its month, a negative
    amount or one with more than two decimals."""
    try:
        [recorded] = campaign_spend_record_many(
            campaign=campaign, entries=[{"period": period, "date": date, "amount": amount}]
        )
    except IngestRejected as rejected:
        errors: dict[str, list[ValidationError]] = {}
        for error in rejected.errors:
            errors.setdefault(error.field or NON_FIELD_ERRORS, []).append(ValidationError(error.message, error.code))
        raise ValidationError(errors) from None
    return recorded


def campaign_spend_record(
    *, campaign: Campaign, period: str, date: date | str, amount: Decimal | int | str
) -> MarketingSpend:
    """campaign_spend_record_status's row."""
    return campaign_spend_record_status(campaign=campaign, period=period, date=date, amount=amount).spend
