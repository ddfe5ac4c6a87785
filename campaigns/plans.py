"""Channel plans (SPEC §6): what each channel does for the customers of each stage, one plan per stage × channel.

Selectors read the matrix (stages as rows, active channels as columns); services create and change plans after
validating them. Every save goes through the model's audit history (django-simple-history); the services name
the person (when a logged-in user made the change) and a reason on the history row.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.models import ChannelPlan
from clm.base.history import audit_as
from lifecycle.models import Channel, LifecycleModel, Stage

# The fields a marketer fills in; stage and channel identify the cell and never change.
PLAN_FIELDS: tuple[str, ...] = ("objective", "strategy", "content", "kpi", "kpi_target", "owner", "active")
_TEXT_LIMITS = {"objective": 300, "kpi": 200, "owner": 100, "strategy": None, "content": None}
# kpi_target is DecimalField(max_digits=12, decimal_places=4): at most 8 digits before the point.
_TARGET_LIMIT = Decimal("1e8")
_REASON_LENGTH = 100  # simple_history's history_change_reason column


class ChannelPlanExists(ValidationError):
    """A create for a cell that already has a plan; `plan` is that plan (change it instead)."""

    def __init__(self, plan: ChannelPlan) -> None:
        self.plan = plan
        super().__init__(
            {
                "channel": [
                    _("Stage %(stage)r × channel %(channel)r already has a plan (id %(id)s); change that plan instead.")
                    % {"stage": plan.stage.key, "channel": plan.channel.key, "id": plan.pk}
                ]
            }
        )


# --- selectors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One row of the matrix: a stage and its plan (or None) for each column's channel, in column order."""

    stage: Stage
    cells: list[ChannelPlan | None]


def channel_plan_matrix(*, model: LifecycleModel) -> dict[str, Any]:
    """The plan matrix of `model`: three queries whatever the number of stages, channels or plans.

    Result: {"model": LifecycleModel, "stages": [Stage, …] (funnel order: position, then id), "channels":
    [Channel, …] (the active channels by key: the columns), "rows": [PlanRow, …] (one per stage, a cell per
    column), "plans": [ChannelPlan, …] (every plan of the model, inactive channels' too, in row then channel
    order)}.
    """
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk"))
    channels = list(Channel.objects.filter(active=True).order_by("key"))
    plans = list(
        ChannelPlan.objects.filter(stage__model=model)
        .select_related("stage__model", "channel")
        .order_by("stage__position", "stage_id", "channel__key")
    )
    by_cell = {(plan.stage_id, plan.channel_id): plan for plan in plans}
    rows = [PlanRow(stage, [by_cell.get((stage.pk, channel.pk)) for channel in channels]) for stage in stages]
    return {"model": model, "stages": stages, "channels": channels, "rows": rows, "plans": plans}


def channel_plan_get(*, plan_id: int) -> ChannelPlan | None:
    return ChannelPlan.objects.select_related("stage__model", "channel").filter(pk=plan_id).first()


# --- validation -----------------------------------------------------------------------------------


def _target_clean(value: Any) -> Decimal | None:
    """A KPI target as a Decimal: a number or a numeric string; None clears it."""
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int in Python, but `true` is no target
        raise ValueError
    try:
        target = Decimal(str(value).strip()) if isinstance(value, str | int | float | Decimal) else None
    except InvalidOperation:
        target = None
    if target is None or not target.is_finite():
        raise ValueError
    return target


def channel_plan_fields_clean(*, fields: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The plan fields, checked and normalised; a ValidationError {field: [message]} lists every problem.

    On create the objective is required; on update only the given fields are checked (an objective given must
    not be blank either).
    """
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(fields) - set(PLAN_FIELDS))
    for name in unknown:
        errors[name] = [
            _("Unknown field %(name)r; a plan has: %(known)s.") % {"name": name, "known": ", ".join(PLAN_FIELDS)}
        ]
    cleaned: dict[str, Any] = {}
    for name, limit in _TEXT_LIMITS.items():
        if name not in fields:
            continue
        value = fields[name]
        if value is None and name != "objective":
            value = ""
        if not isinstance(value, str):
            errors[name] = [_("Must be text.")]
            continue
        value = value.strip()
        if limit is not None and len(value) > limit:
            errors[name] = [
                _("At most %(limit)s characters (this has %(length)s).") % {"limit": limit, "length": len(value)}
            ]
            continue
        cleaned[name] = value
    if ("objective" in cleaned and not cleaned["objective"]) or (creating and "objective" not in fields):
        errors["objective"] = [_("A plan needs an objective: what this channel should achieve for this stage.")]
    if "kpi_target" in fields:
        try:
            target = _target_clean(fields["kpi_target"])
        except ValueError:
            errors["kpi_target"] = [
                _("%(value)r is not a number; send e.g. 30 or 12.5 (or null).") % {"value": fields["kpi_target"]}
            ]
        else:
            if target is not None and (abs(target) >= _TARGET_LIMIT or target != round(target, 4)):
                errors["kpi_target"] = [_("At most 8 digits before the decimal point and 4 after it.")]
            else:
                cleaned["kpi_target"] = target
    if "active" in fields:
        if isinstance(fields["active"], bool):
            cleaned["active"] = fields["active"]
        else:
            errors["active"] = [_("Must be true or false.")]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _cell_check(*, stage: Stage, channel: Channel, model: LifecycleModel | None) -> None:
    """A plan's stage must belong to the model the caller names, and its channel must be active."""
    errors: dict[str, list[str]] = {}
    if model is not None and stage.model_id != model.pk:
        errors["stage"] = [
            _(
                "Stage %(stage)r belongs to model %(stage_model)r, not %(model)r: a plan's stage must be a stage of "
                "its model."
            )
            % {"stage": stage.key, "stage_model": stage.model.key, "model": model.key}
        ]
    if not channel.active:
        errors["channel"] = [
            _("Channel %(channel)r is inactive; activate it before planning for it.") % {"channel": channel.key}
        ]
    if errors:
        raise ValidationError(errors)


# --- services -------------------------------------------------------------------------------------


def channel_plan_create(
    *,
    stage: Stage,
    channel: Channel,
    model: LifecycleModel | None = None,
    user: Any = None,
    reason: str = "",
    **fields: Any,
) -> ChannelPlan:
    """Create the plan of one stage × channel cell. Raises ValidationError (nothing written) for a stage of
    another model than `model`, an inactive channel or invalid fields, ChannelPlanExists when the cell has a plan.
    """
    _cell_check(stage=stage, channel=channel, model=model)
    cleaned = channel_plan_fields_clean(fields=fields, creating=True)
    existing = ChannelPlan.objects.select_related("stage", "channel").filter(stage=stage, channel=channel).first()
    if existing is not None:
        raise ChannelPlanExists(existing)
    plan = ChannelPlan(stage=stage, channel=channel, **cleaned)
    audit_as(plan, actor=user, reason=reason or "created")
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError:
        # A concurrent request created the same cell between the check and the insert.
        existing = ChannelPlan.objects.select_related("stage", "channel").get(stage=stage, channel=channel)
        raise ChannelPlanExists(existing) from None
    return plan


def channel_plan_update(*, plan: ChannelPlan, user: Any = None, reason: str = "", **fields: Any) -> ChannelPlan:
    """Change some fields of a plan (a partial update). Saves, and so writes a history row, only when a value
    actually changes. Raises ValidationError (nothing written) for invalid fields."""
    cleaned = channel_plan_fields_clean(fields=fields, creating=False)
    changed = [name for name, value in cleaned.items() if getattr(plan, name) != value]
    if not changed:
        return plan
    for name in changed:
        setattr(plan, name, cleaned[name])
    audit_as(plan, actor=user, reason=reason or f"changed {', '.join(changed)}")
    plan.save()
    return plan


@transaction.atomic
def channel_plan_upsert(
    *,
    stage: Stage,
    channel: Channel,
    model: LifecycleModel | None = None,
    user: Any = None,
    reason: str = "",
    **fields: Any,
) -> ChannelPlan:
    """The plan of one stage × channel cell with these fields: created when the cell has none, else updated
    (only the given fields; no write and no history row when nothing changes).

    Raises ValidationError (nothing written) for a stage that is not a stage of `model` (when given), an inactive
    channel, an unknown field, a missing or blank objective (on create), or a KPI target that is not a number.
    """
    _cell_check(stage=stage, channel=channel, model=model)
    plan = ChannelPlan.objects.select_for_update().filter(stage=stage, channel=channel).first()
    if plan is None:
        return channel_plan_create(stage=stage, channel=channel, model=model, user=user, reason=reason, **fields)
    return channel_plan_update(plan=plan, user=user, reason=reason, **fields)
