"""Statistics for experiments on conversion rates: pure functions over counts, scipy only (and Django's gettext for
the "not enough data" reason, which the experiment page shows).

Conventions: group A is the control (or baseline), group B the variant; a difference is B − A. Rates are
proportions in [0, 1]. Every function refuses impossible counts (negative, more successes than trials, an empty
group) with ValueError, so a caller never gets a silently meaningless number.

Choices, for the docs and the tests:
- z-test: two-sided, with the pooled standard error (the null hypothesis says both rates are equal, so the
  variance is estimated from the pooled rate). When both groups are all-failure or all-success the pooled SE is
  0: there is no evidence of a difference, so z = 0 and p = 1.
- Confidence interval of the difference: unpooled Wald (the rates are not assumed equal).
- Confidence interval of the relative uplift (B / A − 1): log risk ratio (Katz et al. 1978), as
  scipy.stats.contingency.relative_risk computes it; undefined when either group has no success.
- Several variants against one control: each comparison's p-value is Holm-adjusted (holm_adjusted), so the chance
  of calling any variant significant by chance stays at most alpha; with one variant the adjustment changes
  nothing.
- Chi-square test of independence for k groups × (converted, not converted): scipy.stats.chi2_contingency
  without Yates' continuity correction, also for 2 × 2, so that for two groups chi² = z² and both tests give
  the same p-value (Yates' correction is conservative and would contradict the z-test shown beside it).
- Sample size per group: the normal-approximation formula of Fleiss, Levin & Paik (Statistical Methods for Rates
  and Proportions, 3rd ed., eq. 4.14 without continuity correction), the same formula R's power.prop.test
  solves: n = (z₁₋α/₂·√(2·p̄·q̄) + z₁₋β·√(p₁q₁ + p₂q₂))² / Δ², p̄ = (p₁ + p₂)/2. It matches the pooled z-test.
"""

import math
from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from scipy import stats
from scipy.stats.contingency import relative_risk

# "Not enough data" (see enough_data): the normal approximation behind the z-test and the chi-square test needs
# every cell's expected count to be at least 5 (Cochran's rule, the textbook condition), and a handful of
# exposures per group is too few to trust even when the expected counts pass (e.g. 100 % conversions of 5).
MIN_EXPOSED_PER_GROUP = 30
MIN_EXPECTED_PER_CELL = 5.0


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    dof: int | None = None


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def _check(successes: int, total: int, name: str) -> None:
    if total <= 0:
        raise ValueError(f"{name}: the group is empty (total {total}).")
    if successes < 0 or successes > total:
        raise ValueError(f"{name}: successes must be between 0 and the total ({successes} of {total}).")


def _z_critical(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}.")
    return float(stats.norm.ppf(1 - alpha / 2))


def two_proportion_ztest(*, successes_a: int, total_a: int, successes_b: int, total_b: int) -> TestResult:
    """Two-sided z-test of H0: rate A = rate B, with the pooled standard error. `statistic` is z for B − A."""
    _check(successes_a, total_a, "group A")
    _check(successes_b, total_b, "group B")
    rate_a, rate_b = successes_a / total_a, successes_b / total_b
    pooled = (successes_a + successes_b) / (total_a + total_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if se == 0:
        # Both groups all-failure or all-success: identical, no evidence of a difference.
        return TestResult(statistic=0.0, p_value=1.0)
    z = (rate_b - rate_a) / se
    # 2·sf(|z|) rather than 2·(1 − cdf): exact in the far tail, where 1 − cdf rounds to 0.
    return TestResult(statistic=z, p_value=float(min(1.0, 2 * stats.norm.sf(abs(z)))))


def difference_interval(
    *, successes_a: int, total_a: int, successes_b: int, total_b: int, alpha: float = 0.05
) -> Interval:
    """Confidence interval (1 − alpha) of rate B − rate A: unpooled Wald, clipped to the possible range [−1, 1].

    With zero (or all) successes in both groups the standard error is 0 and the interval collapses to the
    estimate: the data cannot say more, and `enough_data` flags such tables before anyone reads them.
    """
    _check(successes_a, total_a, "group A")
    _check(successes_b, total_b, "group B")
    rate_a, rate_b = successes_a / total_a, successes_b / total_b
    se = math.sqrt(rate_a * (1 - rate_a) / total_a + rate_b * (1 - rate_b) / total_b)
    margin = _z_critical(alpha) * se
    difference = rate_b - rate_a
    return Interval(estimate=difference, low=max(-1.0, difference - margin), high=min(1.0, difference + margin))


def relative_uplift_interval(
    *, successes_a: int, total_a: int, successes_b: int, total_b: int, alpha: float = 0.05
) -> Interval | None:
    """Confidence interval (1 − alpha) of the relative uplift rate B / rate A − 1, by the log risk ratio (Katz):
    log(RR) ± z·√(1/x_B − 1/n_B + 1/x_A − 1/n_A). None when either group has no success (the ratio or its
    logarithm is undefined)."""
    _check(successes_a, total_a, "group A")
    _check(successes_b, total_b, "group B")
    _z_critical(alpha)  # refuses an alpha outside (0, 1) as the other intervals do
    if successes_a == 0 or successes_b == 0:
        return None
    risk = relative_risk(
        exposed_cases=successes_b, exposed_total=total_b, control_cases=successes_a, control_total=total_a
    )
    low, high = risk.confidence_interval(confidence_level=1 - alpha)
    return Interval(estimate=float(risk.relative_risk) - 1, low=float(low) - 1, high=float(high) - 1)


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (Holm 1979) of p-values tested together, in their order: the i-th smallest is
    multiplied by (m − i + 1), kept at least as large as the one before it and capped at 1. A comparison is
    significant at alpha when its adjusted p-value is below alpha; the family-wise error stays at most alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def chi_square_test(*, successes: list[int], totals: list[int]) -> TestResult:
    """Chi-square test of independence of k groups × (converted, not converted), without Yates' correction.

    When every group converted all or none alike (a column of zeros) the test is undefined; there is no evidence
    of a difference, so chi² = 0 and p = 1 (as the z-test does).
    """
    if len(successes) != len(totals) or len(totals) < 2:
        raise ValueError("The chi-square test needs two or more groups, each with successes and a total.")
    for index, (x, n) in enumerate(zip(successes, totals, strict=True)):
        _check(x, n, f"group {index + 1}")
    converted, total = sum(successes), sum(totals)
    if converted in (0, total):
        return TestResult(statistic=0.0, p_value=1.0, dof=len(totals) - 1)
    table = [[x, n - x] for x, n in zip(successes, totals, strict=True)]
    result = stats.chi2_contingency(table, correction=False)
    return TestResult(statistic=float(result.statistic), p_value=float(result.pvalue), dof=int(result.dof))


def sample_size_per_group(*, baseline_rate: float, minimum_detectable_effect: float, alpha: float, power: float) -> int:
    """Exposures each group needs so that a two-sided test at `alpha` detects an absolute difference of
    `minimum_detectable_effect` from `baseline_rate` with probability `power` (Fleiss, see the module docstring).

    The alternative rate is baseline + effect, or baseline − effect when that would pass 100 %.
    """
    if not 0 <= baseline_rate <= 1:
        raise ValueError(f"baseline_rate must be between 0 and 1, not {baseline_rate}.")
    if not 0 < minimum_detectable_effect < 1:
        raise ValueError(f"minimum_detectable_effect must be between 0 and 1, not {minimum_detectable_effect}.")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, not {power}.")
    rate_1 = baseline_rate
    rate_2 = rate_1 + minimum_detectable_effect
    if rate_2 > 1:
        rate_2 = rate_1 - minimum_detectable_effect
        if rate_2 < 0:
            raise ValueError("minimum_detectable_effect is larger than any possible change of this baseline rate.")
    mean = (rate_1 + rate_2) / 2
    z_alpha = _z_critical(alpha)
    z_beta = float(stats.norm.ppf(power))
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        rate_1 * (1 - rate_1) + rate_2 * (1 - rate_2)
    )
    # Rounded before ceil so that float noise (76.00000000001) does not ask for one exposure more.
    return math.ceil(round(root**2 / minimum_detectable_effect**2, 6))


def still_needed(*, needed: int, exposed: int) -> int:
    """More exposures a group needs to reach the planned sample size (never negative)."""
    return max(0, needed - exposed)


def enough_data(
    *,
    successes: list[int],
    totals: list[int],
    min_exposed: int = MIN_EXPOSED_PER_GROUP,
    min_expected: float = MIN_EXPECTED_PER_CELL,
) -> tuple[bool, str]:
    """Whether the groups are large enough for the z-test and chi-square to be trusted, and why not.

    Enough when every group has at least `min_exposed` exposures and, under the null hypothesis (the pooled
    rate), every cell of the groups × (converted, not converted) table expects at least `min_expected` counts.
    """
    if not totals or min(totals) < min_exposed:
        smallest = min(totals, default=0)
        reason = _("Every variant needs at least %(minimum)s exposed customers; the smallest has %(smallest)s.")
        return False, reason % {"minimum": min_exposed, "smallest": smallest}
    pooled = sum(successes) / sum(totals)
    smallest_expected = min(min(n * pooled, n * (1 - pooled)) for n in totals)
    if smallest_expected < min_expected:
        reason = _(
            "Too few conversions (or non-conversions) to test: every variant should expect at least %(minimum)s of "
            "each at the overall rate of %(rate)s%%; the smallest expects %(smallest)s."
        )
        return False, reason % {
            "minimum": number_format(f"{min_expected:g}"),
            "rate": number_format(pooled * 100, 1),
            "smallest": number_format(smallest_expected, 1),
        }
    return True, ""
