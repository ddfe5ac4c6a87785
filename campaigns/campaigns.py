"""Campaigns: create and change them, record their spend, and compute their results (SPEC §6, issue 5 item 3).

A campaign is known to the rest of the data only by its code: orders and touchpoints carry it as a plain string
(like a UTM campaign parameter) and marketing spend is recorded under it (MarketingSpend.campaign_code). Results
are computed from those rows in a fixed number of set-based queries, the same on PostgreSQL and SQLite.

Services raise django.core.exceptions.ValidationError with a dict {field: [message, …]}, so API views, forms
and the admin can show every problem next to the field it concerns. Messages are translated when raised, into
the request's language (German on the German dashboard; English for API clients that do not ask for German).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, CampaignStatus, MarketingSpend, SpendPeriod
from clm.base.days import day_start
from clm.base.history import audit_as
from lifecycle.models import (
    Channel,
    Customer,
    LifecycleModel,
    Order,
    OrderStatus,
    Stage,
    StageKind,
    StageTransition,
    Touchpoint,
)

EARLIEST_DATE = date(1970, 1, 1)
# Spend may be booked for today in the shop's time zone while it is still yesterday in UTC (and vice versa).
FUTURE_TOLERANCE = timedelta(days=1)
MAX_ATTRIBUTION_DAYS = 365
MAX_AMOUNT = Decimal("999999999999.99")  # MarketingSpend.amount / Campaign.budget: 14 digits, 2 decimals

ATTRIBUTION_CODE_LABEL = "orders carrying the campaign code"
ATTRIBUTION_WINDOW_LABEL = "orders within {days} days after a campaign touchpoint"
ADVANCEMENT_DEFINITION = (
    "Of the reached customers who were in a target stage at their first campaign touchpoint (the stage their last "
    "transition at or before that moment led to), the share whose next transition, within attribution_days after "
    "the touchpoint, went to a later funnel stage (from a funnel stage) or into any funnel stage (from an exit "
    "stage)."
)
NEW_CUSTOMERS_DEFINITION = (
    "Customers whose first completed order (up to as_of) is attributed to the campaign by either attribution: it "
    "carries the campaign code and was placed on or after the start date, or it was placed within "
    "attribution_days after the customer's first campaign touchpoint."
)

_UPDATABLE = frozenset(
    {"code", "name", "channel", "model", "stages", "start_date", "end_date", "budget", "status", "attribution_days"}
)


# --- validation -----------------------------------------------------------------------------------


class _Errors:
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


def _code_taken(code: str) -> str:
    return _("A campaign with the code %(code)r already exists.") % {"code": code}


def _date_parse(value: Any, field: str, errors: _Errors) -> date | None:
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


def _amount_parse(value: Any, field: str, errors: _Errors, *, allow_none: bool = False) -> Decimal | None:
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


def _latest_allowed_day() -> date:
    return (timezone.now() + FUTURE_TOLERANCE).astimezone(UTC).date()


@dataclass
class _CampaignValues:
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


def _campaign_clean(raw: Mapping[str, Any], *, instance: Campaign | None) -> _CampaignValues:
    """Validate every field of a campaign (new or changed) at once; a ValidationError lists each problem.

    Channel, model and stages are given as instances or keys; stages must belong to the model.
    """
    errors = _Errors()

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
            errors.add("code", _code_taken(code))
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

    start = _date_parse(raw["start_date"], "start_date", errors)
    end = _date_parse(raw["end_date"], "end_date", errors)
    if start is not None and start < EARLIEST_DATE:
        errors.add("start_date", _("Date is before 1970-01-01."))
    if start is not None and end is not None and end < start:
        errors.add(
            "end_date", _("The campaign ends (%(end)s) before it starts (%(start)s).") % {"end": end, "start": start}
        )

    budget = _amount_parse(raw["budget"], "budget", errors, allow_none=True)

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
    return _CampaignValues(
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


def _save(campaign: Campaign, values: _CampaignValues, actor: Any) -> Campaign:
    audit_as(campaign, actor=actor)
    for field in ("code", "name", "channel", "model", "start_date", "end_date", "budget", "status", "attribution_days"):
        setattr(campaign, field, getattr(values, field))
    try:
        with transaction.atomic():
            campaign.save()
            campaign.stages.set(values.stages)
    except IntegrityError:
        # A concurrent request took the code between our check and the insert.
        raise ValidationError({"code": [_code_taken(values.code)]}) from None
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
    values = _campaign_clean(
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
    values = _campaign_clean({**current, **data}, instance=campaign)
    return _save(campaign, values, actor)


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
    errors = _Errors()
    if period not in SpendPeriod.values:
        known = ", ".join(SpendPeriod.values)
        errors.add("period", _("Unknown period %(period)r; known: %(known)s.") % {"period": period, "known": known})
    day = _date_parse(date, "date", errors)
    if day is not None:
        if period == SpendPeriod.MONTH:
            day = day.replace(day=1)
        if day < EARLIEST_DATE:
            errors.add("date", _("Date is before 1970-01-01."))
        elif day > _latest_allowed_day():
            errors.add("date", _("%(day)s is in the future; record spend once it is spent.") % {"day": day})
    value = _amount_parse(amount, "amount", errors)
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


def _money(value: Decimal | float | None) -> float:
    return round(float(value or 0), 2)


def _ratio(numerator: float, denominator: float, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _advancement_pairs(*, targets: Iterable[Stage], stages: Iterable[Stage]) -> dict[int, list[int]]:
    """For each target stage id, the stage ids a next transition must lead to for the customer to count as
    advanced: later funnel stages from a funnel stage, any funnel stage from an exit stage."""
    funnel = [stage for stage in stages if stage.kind == StageKind.FUNNEL]
    pairs = {}
    for target in targets:
        if target.kind == StageKind.EXIT:
            pairs[target.pk] = [stage.pk for stage in funnel]
        else:
            pairs[target.pk] = [stage.pk for stage in funnel if stage.position > target.position]
    return pairs


def campaign_results(*, campaign: Campaign, as_of: datetime | None = None) -> dict[str, Any]:
    """What the campaign cost and brought, as of a moment (default now): seven queries whatever the data size.

    Period: from the start date's first moment to the end date's last (UTC); nothing after `as_of` counts.

    - spend: every MarketingSpend row carrying the code (any channel, day and month rows) dated up to as_of;
    - reached: distinct customers with a touchpoint carrying the code in the period; a customer's *first campaign
      touchpoint* is the earliest of those;
    - advancement: see ADVANCEMENT_DEFINITION (in_target_stage, advanced, rate = advanced / in_target_stage);
    - revenue, two attributions, each with orders, customers, revenue and roas = revenue / spend (None without
      spend), only completed orders placed up to as_of:
      - campaign_code: orders carrying the code placed on or after the start date (no end: a campaign link keeps
        selling after the campaign stops);
      - touchpoint_window: orders of reached customers placed from their first campaign touchpoint to
        attribution_days after it, whatever code they carry;
      an order can count in both, so the two must not be added up;
    - new_customers: see NEW_CUSTOMERS_DEFINITION (total, and by each attribution; a customer can count in both);
    - cac = spend / new_customers.total (None without new customers).
    """
    as_of = as_of or timezone.now()
    start = day_start(campaign.start_date)
    end = day_start(campaign.end_date + timedelta(days=1))  # exclusive
    window = timedelta(days=campaign.attribution_days)

    # Query 1: target stages and all stages of the model (few rows) decide which transitions count as advancing.
    stages = list(Stage.objects.filter(model_id=campaign.model_id).order_by())
    target_ids = set(campaign.stages.order_by().values_list("pk", flat=True))  # query 2
    pairs = _advancement_pairs(targets=[s for s in stages if s.pk in target_ids], stages=stages)

    spend = _money(  # query 3
        MarketingSpend.objects.filter(campaign_code=campaign.code, date__lte=as_of.astimezone(UTC).date()).aggregate(
            total=Sum("amount")
        )["total"]
    )

    touches = Touchpoint.objects.filter(
        campaign_code=campaign.code, occurred_at__gte=start, occurred_at__lt=end, occurred_at__lte=as_of
    )

    def first_touch(customer_ref: str) -> Subquery:
        # The (customer, occurred_at) index answers this per customer with one index probe.
        return Subquery(
            touches.filter(customer_id=OuterRef(customer_ref)).order_by("occurred_at").values("occurred_at")[:1]
        )

    def window_end(field: str) -> ExpressionWrapper:
        return ExpressionWrapper(F(field) + window, output_field=DateTimeField())

    # Query 4: reached customers, their stage at the first campaign touchpoint and their next transition.
    transitions = StageTransition.objects.filter(customer_id=OuterRef("pk"), model_id=campaign.model_id)
    following = transitions.filter(at__gt=OuterRef("first_touch"), at__lte=as_of).order_by("at", "pk")
    reached_customers = Customer.objects.filter(pk__in=touches.values("customer_id")).annotate(
        first_touch=first_touch("pk"),
        stage_at_touch=Subquery(
            transitions.filter(at__lte=OuterRef("first_touch")).order_by("-at", "-pk").values("to_stage_id")[:1]
        ),
        next_stage=Subquery(following.values("to_stage_id")[:1]),
        next_at=Subquery(following.values("at")[:1]),
    )
    advanced_to = Q()
    for target_id, destinations in pairs.items():
        if destinations:
            advanced_to |= Q(stage_at_touch=target_id, next_stage__in=destinations)
    # A campaign always has target stages, but the top funnel stage has nowhere to advance to: an empty condition
    # is left out of the query rather than compiled into an always-false one.
    counts: dict[str, Any] = {"reached": Count("pk")}
    if target_ids:
        counts["in_target_stage"] = Count("pk", filter=Q(stage_at_touch__in=target_ids))
    if advanced_to:
        counts["advanced"] = Count("pk", filter=advanced_to & Q(next_at__lte=window_end("first_touch")))
    reach = {"in_target_stage": 0, "advanced": 0, **reached_customers.aggregate(**counts)}

    completed = Order.objects.filter(status=OrderStatus.COMPLETED, placed_at__lte=as_of)
    totals = {"orders": Count("pk"), "customers": Count("customer_id", distinct=True), "revenue": Sum("amount")}
    # Query 5: attribution (a), the code on the order.
    code_orders = completed.filter(campaign_code=campaign.code, placed_at__gte=start)
    by_code = code_orders.aggregate(**totals)
    # Query 6: attribution (b), an order in the window after the customer's first campaign touchpoint.
    by_window = (
        completed.filter(customer_id__in=touches.values("customer_id"))
        .annotate(first_touch=first_touch("customer_id"))
        .filter(placed_at__gte=F("first_touch"), placed_at__lte=window_end("first_touch"))
        .aggregate(**totals)
    )

    # Query 7: new customers: the first completed order (up to as_of) of each candidate, attributed either way.
    first_order = completed.filter(customer_id=OuterRef("pk")).order_by("placed_at", "pk")
    new_by_code = Q(first_order_code=campaign.code, first_order_at__gte=start)
    new_by_window = Q(
        first_touch__isnull=False, first_order_at__gte=F("first_touch"), first_order_at__lte=window_end("first_touch")
    )
    new = (
        Customer.objects.filter(Q(pk__in=code_orders.values("customer_id")) | Q(pk__in=touches.values("customer_id")))
        .annotate(
            first_order_at=Subquery(first_order.values("placed_at")[:1]),
            first_order_code=Subquery(first_order.values("campaign_code")[:1]),
            first_touch=first_touch("pk"),
        )
        .aggregate(
            total=Count("pk", filter=new_by_code | new_by_window),
            by_campaign_code=Count("pk", filter=new_by_code),
            by_touchpoint_window=Count("pk", filter=new_by_window),
        )
    )

    def attribution(label: str, row: dict[str, Any]) -> dict[str, Any]:
        revenue = _money(row["revenue"])
        return {
            "label": label,
            "orders": row["orders"],
            "customers": row["customers"],
            "revenue": revenue,
            "roas": _ratio(revenue, spend, 4),
        }

    return {
        "code": campaign.code,
        "as_of": as_of.isoformat(),
        "period": {"start": campaign.start_date.isoformat(), "end": campaign.end_date.isoformat()},
        "attribution_days": campaign.attribution_days,
        "spend": spend,
        "budget": None if campaign.budget is None else _money(campaign.budget),
        "reached": reach["reached"],
        "advancement": {
            "in_target_stage": reach["in_target_stage"],
            "advanced": reach["advanced"],
            "rate": _ratio(reach["advanced"], reach["in_target_stage"], 4),
            "definition": ADVANCEMENT_DEFINITION,
        },
        "revenue": {
            "campaign_code": attribution(ATTRIBUTION_CODE_LABEL, by_code),
            "touchpoint_window": attribution(
                ATTRIBUTION_WINDOW_LABEL.format(days=campaign.attribution_days), by_window
            ),
        },
        "new_customers": {
            "total": new["total"],
            "by_campaign_code": new["by_campaign_code"],
            "by_touchpoint_window": new["by_touchpoint_window"],
            "definition": NEW_CUSTOMERS_DEFINITION,
        },
        "cac": _ratio(spend, new["total"], 2),
    }
