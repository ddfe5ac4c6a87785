"""Experiments (issue 5 item 4): create, start, stop, assign customers to variants, and read the results.

Services write (`experiment_create`, `experiment_start`, `experiment_stop`, `experiment_assign`); selectors read
(`experiment_get`, `experiment_list`, `experiment_results`); `variant_for` is the pure assignment function.

Assignment is a stable hash, so the shop, the email tool and CLM agree on a customer's variant without sharing
state; the first time someone asks, CLM records the exposure, and from then on the recorded variant wins (so a
later change can never move a customer who has already seen a variant).

What the dashboard shows (validation errors, start/stop refusals, the results' state reason) is translated when
it is produced, into the request's language; the assignment's messages are read by API clients only and stay
English.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns import stats
from campaigns.models import Experiment, ExperimentGoal, ExperimentStatus, Exposure, Variant
from clm.base.history import audit_as
from lifecycle.models import (
    Channel,
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    OrderStatus,
    Stage,
    StageTransition,
    Touchpoint,
)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
MAX_WINDOW_DAYS = 365
MAX_WEIGHT = 1_000_000


class ExperimentError(Exception):
    """A request the experiment's state does not allow; `str()` is a message for the caller."""


class ExperimentStateError(ExperimentError):
    """Start/stop/assign in the wrong status (e.g. stopping a draft, assigning before the start)."""


class ExperimentStopped(ExperimentError):
    """A stopped experiment was asked about a customer it never exposed: no new exposures after the stop."""


class CustomerIneligible(ExperimentError):
    """The customer is not in the experiment's population (stage, channel)."""


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


# --- assignment ------------------------------------------------------------------------------------


def assignment_bucket(*, experiment_key: str, customer_external_id: str, total_weight: int) -> int:
    """A number in [0, total_weight) fixed by the experiment key and the customer's external id.

    SHA-256 of "<experiment key>:<external id>" (UTF-8), first 8 bytes as an unsigned big-endian integer, scaled
    to the total weight. Never Python's hash(): it is salted per process. Scaling (x·W >> 64) rather than x mod W
    keeps the buckets equally likely; any change here moves customers between variants, so the tests pin it.
    """
    digest = hashlib.sha256(f"{experiment_key}:{customer_external_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") * total_weight) >> 64


def variant_for(*, experiment: Experiment, customer_external_id: str) -> Variant:
    """The variant a customer belongs in: their bucket falls in one variant's share of the cumulative weights,
    variants in creation order. Pure (no query) when the experiment's variants are prefetched, as
    `experiment_get` does."""
    variants = sorted(experiment.variants.all(), key=lambda v: v.pk)
    bucket = assignment_bucket(
        experiment_key=experiment.key,
        customer_external_id=customer_external_id,
        total_weight=sum(v.weight for v in variants),
    )
    upper = 0
    for variant in variants:
        upper += variant.weight
        if bucket < upper:
            return variant
    raise ValueError(f"Experiment {experiment.key!r} has no variant with a positive weight.")


def customer_ineligibility(*, experiment: Experiment, customer: Customer) -> str | None:
    """Why the customer is outside the experiment's population, or None when inside: currently in the stage
    (of the experiment's model) and, when the experiment names a channel, with a touchpoint on it."""
    in_stage = CustomerStage.objects.filter(
        model_id=experiment.model_id, customer=customer, stage_id=experiment.stage_id
    )
    if not in_stage.exists():
        return f"Customer {customer.external_id!r} is not in the stage {experiment.stage.key!r} of the experiment."
    if experiment.channel_id is not None:
        reached = Touchpoint.objects.filter(customer=customer, channel_id=experiment.channel_id)
        if not reached.exists():
            return f"Customer {customer.external_id!r} has no touchpoint on the channel {experiment.channel.key!r}."
    return None


def experiment_assign(
    *, experiment: Experiment, customer: Customer, at: datetime | None = None
) -> tuple[Variant, Exposure, bool]:
    """The customer's variant and exposure, recording the exposure the first time (`created` True).

    Idempotent: a recorded exposure is returned unchanged (even if the customer has left the stage since, or the
    experiment stopped). A new exposure needs a running experiment and an eligible customer. Raises
    ExperimentStateError (draft), ExperimentStopped (stopped, customer never exposed), CustomerIneligible.
    """
    if experiment.status == ExperimentStatus.DRAFT:
        raise ExperimentStateError(f"Experiment {experiment.key!r} has not started yet; start it first.")
    recorded = Exposure.objects.select_related("variant").filter(experiment=experiment, customer=customer).first()
    if recorded is not None:
        return recorded.variant, recorded, False
    if experiment.status == ExperimentStatus.STOPPED:
        raise ExperimentStopped(
            f"Experiment {experiment.key!r} has stopped and never exposed customer {customer.external_id!r}; "
            "show the default experience."
        )
    reason = customer_ineligibility(experiment=experiment, customer=customer)
    if reason is not None:
        raise CustomerIneligible(reason)
    variant = variant_for(experiment=experiment, customer_external_id=customer.external_id)
    # get_or_create retries the read when a concurrent request inserted first (the unique constraint on
    # experiment + customer), so both callers get the same, single exposure.
    exposure, created = Exposure.objects.get_or_create(
        experiment=experiment, customer=customer, defaults={"variant": variant, "exposed_at": at or timezone.now()}
    )
    if not created:
        variant = Variant.objects.get(pk=exposure.variant_id)
    return variant, exposure, created


# --- results ---------------------------------------------------------------------------------------


class ResultState:
    NOT_ENOUGH_DATA = "not_enough_data"
    RUNNING = "running"
    SIGNIFICANT = "significant"
    NOT_SIGNIFICANT = "not_significant"


@dataclass(frozen=True)
class _Counts:
    exposed: int
    converted: int


def _conversion(experiment: Experiment, as_of: datetime) -> Exists:
    """Whether an exposure's customer reached the goal in [exposed_at, exposed_at + window_days), by `as_of`."""
    window = timedelta(days=experiment.window_days)
    if experiment.goal == ExperimentGoal.PLACE_ORDER:
        return Exists(
            Order.objects.filter(
                customer=OuterRef("customer"),
                status=OrderStatus.COMPLETED,
                placed_at__gte=OuterRef("exposed_at"),
                placed_at__lt=OuterRef("exposed_at") + window,
                placed_at__lte=as_of,
            )
        )
    return Exists(
        StageTransition.objects.filter(
            customer=OuterRef("customer"),
            model_id=experiment.model_id,
            to_stage_id=experiment.goal_stage_id,
            at__gte=OuterRef("exposed_at"),
            at__lt=OuterRef("exposed_at") + window,
            at__lte=as_of,
        )
    )


def _counts(experiment: Experiment, as_of: datetime) -> dict[int, _Counts]:
    """Exposed and converted customers per variant id: one GROUP BY over the exposures with a correlated EXISTS
    per exposure (an index probe on (customer, placed_at) or (customer, model, at))."""
    rows = (
        Exposure.objects.filter(experiment=experiment, exposed_at__lte=as_of)
        .order_by()
        .values("variant")
        .annotate(exposed=Count("pk"), converted=Count("pk", filter=_conversion(experiment, as_of)))
        .values_list("variant", "exposed", "converted")
    )
    return {variant_id: _Counts(exposed, converted) for variant_id, exposed, converted in rows}


def _interval(interval: stats.Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def _test_numbers(overall: dict[str, Any], alpha: float) -> dict[str, str]:
    """The p-value (4 decimals) and alpha of the state reason, with the page language's decimal separator."""
    return {"p_value": number_format(overall["p_value"], 4), "alpha": number_format(f"{alpha:g}")}


def experiment_results(*, experiment: Experiment, as_of: datetime | None = None) -> dict[str, Any]:
    """Per variant: exposed, converted, conversion rate, uplift vs control (absolute and relative, with CIs at
    1 − alpha), z-test p-value vs control; overall test (z-test for two variants, chi-square for more); the
    sample size per variant for the minimum detectable effect at the control's rate, and what is still needed;
    and the state:

    - not_enough_data: a variant has fewer than 30 exposed customers, or a cell of the variants ×
      (converted, not) table expects fewer than 5 customers at the pooled rate (stats.enough_data);
    - running: enough data, but the experiment is running and has not reached the planned sample size yet: the
      numbers are provisional (deciding at the first p < alpha while watching inflates false alarms);
    - significant / not_significant: the planned sample size is reached (or the experiment stopped) and the
      overall test's p-value is below / not below alpha.

    Exposures after `as_of` (default: now) and goal events after it are left out. Queries: the variants (none
    when prefetched) and one aggregate.
    """
    as_of = as_of or timezone.now()
    variants = sorted(experiment.variants.all(), key=lambda v: v.pk)
    counts = _counts(experiment, as_of)
    per_variant = [counts.get(v.pk, _Counts(0, 0)) for v in variants]
    control_index = next(i for i, v in enumerate(variants) if v.is_control)
    control = per_variant[control_index]
    alpha = experiment.alpha

    successes = [c.converted for c in per_variant]
    totals = [c.exposed for c in per_variant]
    enough, reason = stats.enough_data(successes=successes, totals=totals)

    needed = None
    baseline = control.converted / control.exposed if control.exposed else None
    if baseline is not None:
        try:
            needed = stats.sample_size_per_group(
                baseline_rate=baseline,
                minimum_detectable_effect=experiment.minimum_detectable_effect,
                alpha=alpha,
                power=experiment.power,
            )
        except ValueError:
            needed = None  # an effect larger than any change of this baseline: no sample size answers it

    rows = []
    for variant, count in zip(variants, per_variant, strict=True):
        row: dict[str, Any] = {
            "key": variant.key,
            "name": variant.name,
            "is_control": variant.is_control,
            "weight": variant.weight,
            "exposed": count.exposed,
            "converted": count.converted,
            "conversion_rate": count.converted / count.exposed if count.exposed else None,
            "uplift": None,
            "z": None,
            "p_value": None,
            "p_value_adjusted": None,
            "significant": None,
            "still_needed": stats.still_needed(needed=needed, exposed=count.exposed) if needed is not None else None,
        }
        if not variant.is_control and count.exposed and control.exposed:
            pair = {
                "successes_a": control.converted,
                "total_a": control.exposed,
                "successes_b": count.converted,
                "total_b": count.exposed,
            }
            test = stats.two_proportion_ztest(**pair)
            row["uplift"] = {
                "absolute": _interval(stats.difference_interval(**pair, alpha=alpha)),
                "relative": _interval(stats.relative_uplift_interval(**pair, alpha=alpha)),
            }
            row["z"], row["p_value"] = test.statistic, test.p_value
        rows.append(row)
    compared = [row for row in rows if row["p_value"] is not None]
    for row, adjusted in zip(compared, stats.holm_adjusted([row["p_value"] for row in compared]), strict=True):
        row["p_value_adjusted"] = adjusted
        row["significant"] = adjusted < alpha if enough else None

    overall: dict[str, Any] = {"method": "z-test" if len(variants) == 2 else "chi-square", "statistic": None}
    overall.update({"p_value": None, "dof": None})
    if all(totals):
        if len(variants) == 2:
            other = rows[1 - control_index]
            overall.update(statistic=other["z"], p_value=other["p_value"])
        else:
            test = stats.chi_square_test(successes=successes, totals=totals)
            overall.update(statistic=test.statistic, p_value=test.p_value, dof=test.dof)

    remaining = sum(row["still_needed"] for row in rows) if needed is not None else None
    if not enough:
        state = ResultState.NOT_ENOUGH_DATA
    elif experiment.status == ExperimentStatus.RUNNING and (remaining is None or remaining > 0):
        state = ResultState.RUNNING
        reason = (
            _(
                "Provisional: each variant needs %(needed)s exposed customers for the planned power; "
                "%(remaining)s more in all."
            )
            % {"needed": needed, "remaining": remaining}
            if needed is not None
            else _("Provisional: no sample size can be planned for this minimum detectable effect.")
        )
    elif overall["p_value"] < alpha:
        state = ResultState.SIGNIFICANT
        reason = _("p = %(p_value)s < %(alpha)s: the variants differ beyond chance.") % _test_numbers(overall, alpha)
    else:
        state = ResultState.NOT_SIGNIFICANT
        reason = _("p = %(p_value)s ≥ %(alpha)s: no difference beyond chance.") % _test_numbers(overall, alpha)
    if state in (ResultState.SIGNIFICANT, ResultState.NOT_SIGNIFICANT) and remaining:
        short = ngettext(
            "The experiment stopped %(remaining)s exposure short of the planned sample size.",
            "The experiment stopped %(remaining)s exposures short of the planned sample size.",
            remaining,
        )
        reason += " " + short % {"remaining": remaining}

    return {
        "experiment": experiment.key,
        "status": experiment.status,
        "as_of": as_of,
        "goal": experiment.goal,
        "goal_stage": experiment.goal_stage.key if experiment.goal_stage_id else None,
        "window_days": experiment.window_days,
        "alpha": alpha,
        "power": experiment.power,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "state": state,
        "state_reason": reason,
        "test": overall,
        "sample_size": {"baseline_rate": baseline, "per_variant": needed, "still_needed": remaining},
        "variants": rows,
    }
