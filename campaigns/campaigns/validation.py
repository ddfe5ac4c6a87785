"""Checking a campaign's fields: every problem at once, as ValidationError({field: [message]}).

Messages are translated when raised, into the request's language."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from campaigns.models import Campaign, CampaignStatus, MarketingSpend
from lifecycle.models import Channel, LifecycleModel, Stage

EARLIEST_DATE = date(1970, 1, 1)
MAX_ATTRIBUTION_DAYS = 365
MAX_AMOUNT = Decimal("999999999999.99")  # MarketingSpend.amount / Campaign.budget: 14 digits, 2 decimals


class FieldErrors:
    """Collects messages per field so one call reports every problem at once."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _too_long(limit: int, text: str) -> str:
    return _("At most %(limit)s characters; got %(length)s.") % {"limit": limit, "length": len(text)}


def code_taken(code: str) -> str:
    return _("A campaign with the code %(code)r already exists.") % {"code": code}


def date_parse(value: Any, field: str, errors: FieldErrors) -> date | None:
    """A date from a date or a YYYY-MM-DD string; None (with an error) otherwise."""
    if isinstance(value, datetime):
        errors.add(field, _("Expected a date (YYYY-MM-DD), not a date-time: %(value)s.") % {"value": value.isoformat()})
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors.add(field, _("%(value)r is not a date (YYYY-MM-DD).") % {"value": value})
    return None


def amount_parse(value: Any, field: str, errors: FieldErrors, *, allow_none: bool = False) -> Decimal | None:
    """A non-negative amount with at most two decimals; None (with an error unless allowed) otherwise."""
    if value is None:
        if not allow_none:
            errors.add(field, _("An amount is required."))
        return None
    if isinstance(value, bool):  # bool is an int subclass: True is not an amount
        errors.add(field, _("%(value)r is not an amount.") % {"value": value})
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        errors.add(field, _("%(value)r is not an amount.") % {"value": value})
        return None
    if not amount.is_finite():
        errors.add(field, _("%(value)r is not an amount.") % {"value": value})
    elif amount < 0:
        errors.add(field, _("Must not be negative; got %(amount)s.") % {"amount": amount})
    elif amount != amount.quantize(Decimal("0.01")):
        errors.add(field, _("At most two decimal places; got %(amount)s.") % {"amount": amount})
    elif amount > MAX_AMOUNT:
        errors.add(field, _("At most %(limit)s; got %(amount)s.") % {"limit": MAX_AMOUNT, "amount": amount})
    else:
        return amount
    return None


@dataclass
class CampaignValues:
    code: str
    name: str
    channel: Channel | None
    model: LifecycleModel | None
    stages: list[Stage]
    start_date: date | None
    end_date: date | None
    budget: Decimal | None
    status: str
    attribution_days: int | None


def campaign_clean(raw: Mapping[str, Any], *, instance: Campaign | None) -> CampaignValues:
    """Validate every field of a campaign (new or changed) at once; a ValidationError lists each problem.

    Channel, model and stages are given as instances or keys; stages must belong to the model.
    """
    errors = FieldErrors()

    code = raw["code"]
    if not isinstance(code, str) or not code.strip():
        errors.add("code", _("A campaign code is required."))
    elif code != code.strip():
        errors.add("code", _("The code must not start or end with spaces (orders and touchpoints carry it verbatim)."))
    elif len(code) > 100:
        errors.add("code", _too_long(100, code))
    else:
        duplicates = Campaign.objects.filter(code=code)
        if instance is not None:
            duplicates = duplicates.exclude(pk=instance.pk)
        if duplicates.exists():
            errors.add("code", code_taken(code))
        elif instance is not None and code != instance.code:
            # Spend rows carry the code; renaming the campaign would orphan them from it.
            if MarketingSpend.objects.filter(campaign_code=instance.code).exists():
                errors.add(
                    "code",
                    _("Spend is recorded under %(code)r; the code can no longer change.") % {"code": instance.code},
                )

    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        errors.add("name", _("A name is required."))
    elif len(name) > 200:
        errors.add("name", _too_long(200, name))

    channel = raw["channel"]
    if not isinstance(channel, Channel):
        found = Channel.objects.filter(key=channel).first() if isinstance(channel, str) else None
        if found is None:
            known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
            errors.add(
                "channel", _("Unknown channel %(channel)r; known: %(known)s.") % {"channel": channel, "known": known}
            )
        channel = found

    model = raw["model"]
    if not isinstance(model, LifecycleModel):
        found_model = LifecycleModel.objects.filter(key=model).first() if isinstance(model, str) else None
        if found_model is None:
            known = ", ".join(LifecycleModel.objects.order_by("key").values_list("key", flat=True))
            errors.add("model", _("Unknown model %(model)r; known: %(known)s.") % {"model": model, "known": known})
        model = found_model

    stages: list[Stage] = []
    raw_stages = raw["stages"]
    if isinstance(raw_stages, str) or not isinstance(raw_stages, Iterable):
        errors.add("stages", _("Expected a list of stage keys."))
    else:
        raw_stages = list(raw_stages)
        if not raw_stages:
            errors.add("stages", _("Name at least one target stage."))
        elif model is not None:
            of_model = {stage.key: stage for stage in Stage.objects.filter(model=model)}
            for item in raw_stages:
                if isinstance(item, Stage):
                    if item.model_id != model.pk:
                        errors.add(
                            "stages",
                            _("Stage %(stage)r belongs to another model, not %(model)r.")
                            % {"stage": item.key, "model": model.key},
                        )
                    elif item not in stages:
                        stages.append(item)
                elif isinstance(item, str) and item in of_model:
                    if of_model[item] not in stages:
                        stages.append(of_model[item])
                else:
                    known = ", ".join(sorted(of_model, key=lambda key: (of_model[key].position, key)))
                    errors.add(
                        "stages",
                        _("Unknown stage %(stage)r in model %(model)r; known: %(known)s.")
                        % {"stage": item, "model": model.key, "known": known},
                    )

    start = date_parse(raw["start_date"], "start_date", errors)
    end = date_parse(raw["end_date"], "end_date", errors)
    if start is not None and start < EARLIEST_DATE:
        errors.add("start_date", _("Date is before 1970-01-01."))
    if start is not None and end is not None and end < start:
        errors.add(
            "end_date", _("The campaign ends (%(end)s) before it starts (%(start)s).") % {"end": end, "start": start}
        )

    budget = amount_parse(raw["budget"], "budget", errors, allow_none=True)

    status = raw["status"]
    if status not in CampaignStatus.values:
        known = ", ".join(CampaignStatus.values)
        errors.add("status", _("Unknown status %(status)r; known: %(known)s.") % {"status": status, "known": known})

    days = raw["attribution_days"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_ATTRIBUTION_DAYS:
        errors.add(
            "attribution_days",
            _("A whole number of days from 1 to %(limit)s; got %(days)r.")
            % {"limit": MAX_ATTRIBUTION_DAYS, "days": days},
        )

    errors.raise_if_any()
    return CampaignValues(
        code=code,
        name=name.strip(),
        channel=channel,
        model=model,
        stages=stages,
        start_date=start,
        end_date=end,
        budget=budget,
        status=status,
        attribution_days=days,
    )
