"""Recording a campaign's spend for a day or a month, on its channel and under its code."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.campaigns.validation import EARLIEST_DATE, FieldErrors, amount_parse, date_parse, latest_allowed_day
from campaigns.models import Campaign, MarketingSpend, SpendPeriod


@dataclass(frozen=True)
class SpendRecorded:
    spend: MarketingSpend
    status: str  # created, updated or unchanged


def campaign_spend_record(
    *, campaign: Campaign, period: str, date: date | str, amount: Decimal | int | str
) -> MarketingSpend:
    """Record the campaign's spend for one day or month on its channel, replacing what was recorded for it.

    The row is matched by its natural key (channel, campaign code, period, date), so sending the same spend again
    changes nothing. A monthly date is moved to the first of its month. Refused (ValidationError naming the
    field): an unknown period, an unparseable date, a date before 1970 or in the future, a negative amount.
    """
    return campaign_spend_record_status(campaign=campaign, period=period, date=date, amount=amount).spend


def campaign_spend_record_status(
    *, campaign: Campaign, period: str, date: date | str, amount: Decimal | int | str
) -> SpendRecorded:
    """campaign_spend_record, also saying whether the row was created, updated or already so."""
    errors = FieldErrors()
    if period not in SpendPeriod.values:
        known = ", ".join(SpendPeriod.values)
        errors.add("period", _("Unknown period %(period)r; known: %(known)s.") % {"period": period, "known": known})
    day = date_parse(date, "date", errors)
    if day is not None:
        if period == SpendPeriod.MONTH:
            day = day.replace(day=1)
        if day < EARLIEST_DATE:
            errors.add("date", _("Date is before 1970-01-01."))
        elif day > latest_allowed_day():
            errors.add("date", _("%(day)s is in the future; record spend once it is spent.") % {"day": day})
    value = amount_parse(amount, "amount", errors)
    errors.raise_if_any()
    with transaction.atomic():
        spend, created = MarketingSpend.objects.select_for_update().get_or_create(
            channel_id=campaign.channel_id,
            campaign_code=campaign.code,
            period=period,
            date=day,
            defaults={"amount": value},
        )
        if created:
            return SpendRecorded(spend, "created")
        if spend.amount == value:
            return SpendRecorded(spend, "unchanged")
        spend.amount = value
        spend.save(update_fields=["amount", "updated_at"])
        return SpendRecorded(spend, "updated")
