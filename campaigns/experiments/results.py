"""An experiment's results as of a moment: counts per variant in one aggregate, the tests, the state."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns import stats
from campaigns.models import Experiment, ExperimentGoal, ExperimentStatus, Exposure
from lifecycle.models import Order, OrderStatus, StageTransition


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
