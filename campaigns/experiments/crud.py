"""Create, list and read experiments, start and stop them: the dashboard's messages are translated when
produced, into the request's language."""

import re
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.experiments.errors import ExperimentStateError
from campaigns.models import Experiment, ExperimentGoal, ExperimentStatus, Variant
from clm.base.history import audit_as
from lifecycle.models import Channel, LifecycleModel, Stage

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
MAX_WINDOW_DAYS = 365
MAX_WEIGHT = 1_000_000


# --- selectors -------------------------------------------------------------------------------------


def experiment_list() -> QuerySet[Experiment]:
    """Every experiment, newest first, with its model, stages, channel and variants: two queries."""
    return Experiment.objects.select_related("model", "stage", "channel", "goal_stage").prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("pk"))
    )


def experiment_get(*, key: str) -> Experiment | None:
    """One experiment by key with everything `experiment_list` loads: two queries (one when unknown)."""
    return experiment_list().filter(key=key).first()


# --- creation and status ---------------------------------------------------------------------------


def _other_model(stage: Stage, model: LifecycleModel) -> str:
    return _("Stage %(stage)r belongs to another model, not to %(model)r.") % {"stage": stage.key, "model": model.key}


def variant_errors(variants: Any) -> list[str]:
    if not isinstance(variants, list) or len(variants) < 2:
        return [_("An experiment needs at least two variants (a control and one or more alternatives).")]
    errors = []
    seen: set[str] = set()
    for number, variant in enumerate(variants, start=1):
        if not isinstance(variant, dict):
            errors.append(
                _("Variant %(number)s: expected an object with key, name, weight and is_control.") % {"number": number}
            )
            continue
        key = variant.get("key")
        if not isinstance(key, str) or not _SLUG.match(key) or len(key) > 50:
            errors.append(
                _("Variant %(number)s: key must be 1–50 letters, digits, hyphens or underscores.") % {"number": number}
            )
        elif key in seen:
            errors.append(_("Variant %(number)s: key %(key)r is used twice.") % {"number": number, "key": key})
        else:
            seen.add(key)
        name = variant.get("name", key)
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors.append(_("Variant %(number)s: name must be 1–200 characters.") % {"number": number})
        weight = variant.get("weight", 1)
        # bool is an int in Python; a weight of True is a mistake, not 1.
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            errors.append(
                _("Variant %(number)s: weight must be a whole number from 0 to %(limit)s.")
                % {"number": number, "limit": MAX_WEIGHT}
            )
        if not isinstance(variant.get("is_control", False), bool):
            errors.append(_("Variant %(number)s: is_control must be true or false.") % {"number": number})
    if errors:
        return errors
    controls = [v for v in variants if v.get("is_control", False)]
    if len(controls) != 1:
        errors.append(
            _("Exactly one variant must be the control (is_control: true); %(count)s are.") % {"count": len(controls)}
        )
    weights = [v.get("weight", 1) for v in variants]
    if sum(weights) <= 0:
        errors.append(_("The weights must sum to a positive number; they are all 0."))
    elif len(controls) == 1 and controls[0].get("weight", 1) == 0:
        errors.append(_("The control needs a positive weight: without control customers there is nothing to compare."))
    return errors


def experiment_create(
    *,
    key: str,
    name: str,
    model: LifecycleModel,
    stage: Stage,
    channel: Channel | None = None,
    goal: str,
    goal_stage: Stage | None = None,
    window_days: int,
    variants: list[dict[str, Any]],
    hypothesis: str = "",
    minimum_detectable_effect: float = 0.02,
    power: float = 0.8,
    alpha: float = 0.05,
    user: AbstractBaseUser | None = None,
) -> Experiment:
    """Create a draft experiment with its variants, all or nothing.

    Each variant is {"key", "name" (default: the key), "weight" (default 1, ≥ 0), "is_control" (default false)};
    their order is kept and is part of the assignment (see `variant_for`). Raises ValidationError whose
    `message_dict` names every bad field. `user` is recorded in the audit history (None: a client, e.g. an API key).
    """
    errors: dict[str, list[str]] = {}

    def bad(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(key, str) or not _SLUG.match(key) or len(key) > 80:
        bad("key", _("The key must be 1–80 letters, digits, hyphens or underscores."))
    elif key == "new":  # experiments/new/ is the page that creates one
        bad("key", _("The key “new” is reserved; choose another."))
    elif Experiment.objects.filter(key=key).exists():
        bad(
            "key",
            _("An experiment with key %(key)r exists already; keys are never reused (they drive assignment).")
            % {"key": key},
        )
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        bad("name", _("The name must be 1–200 characters."))
    if stage.model_id != model.pk:
        bad("stage", _other_model(stage, model))
    if goal not in ExperimentGoal.values:
        known = ", ".join(ExperimentGoal.values)
        bad("goal", _("Unknown goal %(goal)r; one of: %(known)s.") % {"goal": goal, "known": known})
    elif goal == ExperimentGoal.REACH_STAGE:
        if goal_stage is None:
            bad("goal_stage", _("The goal 'reach_stage' needs the stage to reach."))
        elif goal_stage.model_id != model.pk:
            bad("goal_stage", _other_model(goal_stage, model))
        elif goal_stage.pk == stage.pk:
            bad(
                "goal_stage",
                _("The goal stage must differ from the population's stage, which customers are in already."),
            )
    elif goal_stage is not None:
        bad("goal_stage", _("Only the goal 'reach_stage' takes a goal stage."))
    if isinstance(window_days, bool) or not isinstance(window_days, int) or not 1 <= window_days <= MAX_WINDOW_DAYS:
        bad(
            "window_days",
            _("The window must be a whole number of days from 1 to %(limit)s.") % {"limit": MAX_WINDOW_DAYS},
        )
    for field, value in (("minimum_detectable_effect", minimum_detectable_effect), ("power", power), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            bad(field, _("%(field)s must be a number between 0 and 1 (exclusive).") % {"field": field})
    variant_problems = variant_errors(variants)
    if variant_problems:
        errors["variants"] = variant_problems
    if errors:
        raise ValidationError(errors)

    try:
        with transaction.atomic():
            experiment = Experiment(
                key=key,
                name=name.strip(),
                hypothesis=hypothesis,
                model=model,
                stage=stage,
                channel=channel,
                goal=goal,
                goal_stage=goal_stage,
                window_days=window_days,
                minimum_detectable_effect=minimum_detectable_effect,
                power=power,
                alpha=alpha,
            )
            audit_as(experiment, actor=user)
            experiment.save(force_insert=True)
            # One by one (an experiment has a few variants): primary keys then follow the given order on every
            # database, and that order is part of the assignment.
            for variant in variants:
                Variant.objects.create(
                    experiment=experiment,
                    key=variant["key"],
                    name=variant.get("name", variant["key"]).strip(),
                    weight=variant.get("weight", 1),
                    is_control=variant.get("is_control", False),
                )
    except IntegrityError:
        # Two requests creating the same key at once: the unique constraint decided.
        raise ValidationError({"key": [_("An experiment with key %(key)r exists already.") % {"key": key}]}) from None
    return experiment


def experiment_start(
    *, experiment: Experiment, at: datetime | None = None, user: AbstractBaseUser | None = None
) -> Experiment:
    """Start a draft experiment: from now on `experiment_assign` records exposures. Only drafts start (a stopped
    experiment is not restarted: its exposures and windows would mix two periods; create a new one)."""
    with transaction.atomic():
        status = Experiment.objects.select_for_update().values_list("status", flat=True).get(pk=experiment.pk)
        if status != ExperimentStatus.DRAFT:
            raise ExperimentStateError(
                _("Experiment %(key)r is %(status)s; only a draft can be started.")
                % {"key": experiment.key, "status": ExperimentStatus(status).label}
            )
        experiment.status = ExperimentStatus.RUNNING
        experiment.started_at = at or timezone.now()
        audit_as(experiment, actor=user)
        # save(), not update(): the audit history records saves.
        experiment.save(update_fields=["status", "started_at"])
    return experiment


def experiment_stop(
    *, experiment: Experiment, at: datetime | None = None, user: AbstractBaseUser | None = None
) -> Experiment:
    """Stop a running experiment: recorded customers keep their variant, nobody new is exposed. Stopping a draft
    (never started) or stopping before the start moment is refused."""
    with transaction.atomic():
        row = Experiment.objects.select_for_update().values("status", "started_at").get(pk=experiment.pk)
        if row["status"] != ExperimentStatus.RUNNING:
            raise ExperimentStateError(
                _("Experiment %(key)r is %(status)s; only a running experiment can be stopped.")
                % {"key": experiment.key, "status": ExperimentStatus(row["status"]).label}
            )
        stopped_at = at or timezone.now()
        if stopped_at < row["started_at"]:
            raise ValidationError({"stopped_at": [_("An experiment cannot stop before it started.")]})
        experiment.status = ExperimentStatus.STOPPED
        experiment.stopped_at = stopped_at
        audit_as(experiment, actor=user)
        experiment.save(update_fields=["status", "stopped_at"])
    return experiment
