"""Create, change, list and read campaigns: services write, selectors read (ValidationError as in validation)."""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from campaigns.campaigns.validation import CampaignValues, campaign_clean, code_taken
from campaigns.models import Campaign, CampaignStatus, MarketingSpend
from clm.base.history import audit_as
from lifecycle.models import Channel, LifecycleModel, Stage

_UPDATABLE = frozenset(
    {"code", "name", "channel", "model", "stages", "start_date", "end_date", "budget", "status", "attribution_days"}
)


def _save(campaign: Campaign, values: CampaignValues, actor: Any) -> Campaign:
    audit_as(campaign, actor=actor)
    for field in ("code", "name", "channel", "model", "start_date", "end_date", "budget", "status", "attribution_days"):
        setattr(campaign, field, getattr(values, field))
    try:
        with transaction.atomic():
            campaign.save()
            campaign.stages.set(values.stages)
    except IntegrityError:
        # A concurrent request took the code between our check and the insert.
        raise ValidationError({"code": [code_taken(values.code)]}) from None
    return campaign


# --- services -------------------------------------------------------------------------------------


def campaign_create(
    *,
    code: str,
    name: str,
    channel: Channel | str,
    model: LifecycleModel | str,
    stages: Sequence[Stage | str],
    start_date: date | str,
    end_date: date | str,
    budget: Decimal | int | str | None = None,
    status: str = CampaignStatus.DRAFT,
    attribution_days: int = 30,
    actor: Any = None,
) -> Campaign:
    """Create a campaign targeting `stages` (instances or keys) of `model`; nothing is written on bad input.

    Raises ValidationError({field: [message]}) naming every bad field: a blank or taken code, an unknown channel,
    model or stage, a stage of another model, an unparseable date, an end before the start, a negative budget,
    an unknown status, attribution days outside 1..365. `actor` (request.user: a person or an API-key client)
    is recorded in the audit history.
    """
    values = campaign_clean(
        {
            "code": code,
            "name": name,
            "channel": channel,
            "model": model,
            "stages": stages,
            "start_date": start_date,
            "end_date": end_date,
            "budget": budget,
            "status": status,
            "attribution_days": attribution_days,
        },
        instance=None,
    )
    return _save(Campaign(), values, actor)


def campaign_update(*, campaign: Campaign, data: Mapping[str, Any], actor: Any = None) -> Campaign:
    """Change some fields of a campaign (the keys of `data`, named as in campaign_create); all or nothing.

    The changed values are validated together with the unchanged ones (a new end date against the stored start,
    the stored stages against a new model). The code cannot change once spend is recorded under it. `actor` as
    in campaign_create.
    """
    unknown = sorted(set(data) - _UPDATABLE)
    if unknown:
        raise ValidationError({field: [_("Not a campaign field that can be changed.")] for field in unknown})
    current: dict[str, Any] = {
        "code": campaign.code,
        "name": campaign.name,
        "channel": campaign.channel,
        "model": campaign.model,
        "stages": list(campaign.stages.all()),
        "start_date": campaign.start_date,
        "end_date": campaign.end_date,
        "budget": campaign.budget,
        "status": campaign.status,
        "attribution_days": campaign.attribution_days,
    }
    values = campaign_clean({**current, **data}, instance=campaign)
    return _save(campaign, values, actor)


# --- selectors ------------------------------------------------------------------------------------


def campaign_list(*, status: str | None = None) -> QuerySet[Campaign]:
    """Campaigns (newest start first) with channel, model and stages loaded and `spend_to_date` annotated (the
    sum of all spend recorded under the code, 0 without): two queries when evaluated."""
    spend = (
        MarketingSpend.objects.filter(campaign_code=OuterRef("code"))
        .order_by()
        .values("campaign_code")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    campaigns = (
        Campaign.objects.select_related("channel", "model")
        .prefetch_related("stages")
        .annotate(
            spend_to_date=Coalesce(
                Subquery(spend, output_field=DecimalField(max_digits=16, decimal_places=2)),
                Value(Decimal("0.00")),
                output_field=DecimalField(max_digits=16, decimal_places=2),
            )
        )
        .order_by("-start_date", "code")
    )
    if status is not None:
        campaigns = campaigns.filter(status=status)
    return campaigns


def campaign_get(*, campaign_id: int) -> Campaign | None:
    """One campaign as campaign_list loads it, or None."""
    return campaign_list().filter(pk=campaign_id).first()
