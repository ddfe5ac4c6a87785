"""campaigns.stats against values computed independently of it.

Sources of the expected values:
- OpenIntro Statistics, 4th ed. (Diez, Çetinkaya-Rundel, Barr), §6.2 "Difference of two proportions":
  the blood-thinner / CPR study (treatment 14 of 40 survived, control 11 of 50): point estimate 0.13,
  SE 0.095, 90 % confidence interval (−0.027, 0.287).
  And the mammogram study (Miller et al. 2014: 500 of 44,925 died in the mammogram group, 505 of 44,910 in the
  control group): pooled z-test, Z ≈ −0.17, p-value ≈ 0.87 — no evidence of a difference.
- OpenIntro Statistics, 4th ed., §6.4 "Testing for independence in two-way tables": Google's search algorithm
  experiment (current 1,489 of 5,000 did a new search, test 1 751 of 2,500, test 2 682 of 2,500):
  X² = 6.12, df = 2, p-value = 0.047.
- R's `power.prop.test(p1 = .50, p2 = .75, power = .90)` (its help page example): n = 76.7 per group; the same
  Fleiss formula is statsmodels' `samplesize_proportions_2indep_onetail(0.25, 0.5, 0.9, alternative="two-sided")`
  = 76.70692845177747.
- statsmodels 0.15.0 (run separately, not a dependency of CLM): `proportions_ztest`,
  `confint_proportions_2indep(method="wald", compare="diff")`, `confint_proportions_2indep(method="log",
  compare="ratio")`, `proportions_chisquare`, `samplesize_proportions_2indep_onetail`; the figures are pasted below
  to full precision.
- Hand computations with the math module only (the normal tail via math.erfc), independent of scipy.
"""

import math

import pytest

from campaigns.stats import (
    chi_square_test,
    difference_interval,
    enough_data,
    holm_adjusted,
    relative_uplift_interval,
    sample_size_per_group,
    still_needed,
    two_proportion_ztest,
)


def pair(xa: int, na: int, xb: int, nb: int) -> dict[str, int]:
    return {"successes_a": xa, "total_a": na, "successes_b": xb, "total_b": nb}


def normal_two_sided_p(z: float) -> float:
    """2·P(Z > |z|) from the complementary error function: no scipy."""
    return math.erfc(abs(z) / math.sqrt(2))


# --- z-test ---------------------------------------------------------------------------------------


def test_ztest_matches_the_openintro_mammogram_example():
    result = two_proportion_ztest(**pair(505, 44910, 500, 44925))  # control A, mammogram B

    assert result.statistic == pytest.approx(-0.17, abs=0.01)  # OpenIntro, from rounded intermediate values
    assert result.p_value == pytest.approx(0.87, abs=0.01)
    # statsmodels proportions_ztest([500, 505], [44925, 44910])
    assert result.statistic == pytest.approx(-0.1639329561578003, rel=1e-9)
    assert result.p_value == pytest.approx(0.8697839227860011, rel=1e-9)


@pytest.mark.parametrize(
    ("counts", "z", "p"),
    [
        ((200, 1000, 250, 1000), 2.677397763008329, 0.007419649261025687),
        ((120, 1000, 150, 1000), 1.963049807622355, 0.04964038686536878),
        ((11, 50, 14, 40), 1.3682105101189654, 0.171246192716484),
    ],
)
def test_ztest_matches_statsmodels(counts, z, p):
    result = two_proportion_ztest(**pair(*counts))

    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_ztest_matches_a_hand_computation_with_the_pooled_standard_error():
    xa, na, xb, nb = 48, 400, 75, 420
    pooled = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))

    result = two_proportion_ztest(**pair(xa, na, xb, nb))

    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(normal_two_sided_p(z), rel=1e-9)


def test_identical_groups_give_p_value_one():
    result = two_proportion_ztest(**pair(30, 100, 30, 100))

    assert result.statistic == 0
    assert result.p_value == 1


@pytest.mark.parametrize("counts", [(0, 50, 0, 80), (50, 50, 80, 80)], ids=["no conversions", "all converted"])
def test_groups_without_variation_give_z_zero_and_p_value_one(counts):
    result = two_proportion_ztest(**pair(*counts))

    assert (result.statistic, result.p_value) == (0, 1)


def test_all_versus_none_is_highly_significant():
    # pooled 0.5, SE = √(0.25·(1/10 + 1/10)) = 0.2236, z = 1 / 0.2236 = 4.4721
    result = two_proportion_ztest(**pair(0, 10, 10, 10))

    assert result.statistic == pytest.approx(math.sqrt(20), rel=1e-12)
    assert result.p_value == pytest.approx(normal_two_sided_p(math.sqrt(20)), rel=1e-9)
    assert result.p_value < 1e-5


@pytest.mark.parametrize("counts", [(0, 0, 1, 10), (-1, 10, 1, 10), (11, 10, 1, 10), (1, 10, 5, 4)])
def test_impossible_counts_are_refused(counts):
    with pytest.raises(ValueError):
        two_proportion_ztest(**pair(*counts))


# --- confidence intervals -------------------------------------------------------------------------


def test_difference_interval_matches_the_openintro_blood_thinner_example():
    interval = difference_interval(**pair(11, 50, 14, 40), alpha=0.10)

    assert interval.estimate == pytest.approx(0.13)
    assert interval.low == pytest.approx(-0.027, abs=0.001)  # OpenIntro: (−0.027, 0.287)
    assert interval.high == pytest.approx(0.287, abs=0.001)
    # statsmodels confint_proportions_2indep(14, 40, 11, 50, method="wald", compare="diff", alpha=0.1)
    assert (interval.low, interval.high) == pytest.approx((-0.027077062391754503, 0.28707706239175446), rel=1e-9)


def test_difference_interval_matches_a_hand_computed_unpooled_wald_interval():
    xa, na, xb, nb = 200, 1000, 250, 1000
    se = math.sqrt(0.2 * 0.8 / na + 0.25 * 0.75 / nb)
    z = 1.959963984540054  # the 97.5 % standard normal quantile

    interval = difference_interval(**pair(xa, na, xb, nb))

    assert interval.estimate == pytest.approx(0.05)
    assert interval.low == pytest.approx(0.05 - z * se, rel=1e-12)
    assert interval.high == pytest.approx(0.05 + z * se, rel=1e-12)
    # statsmodels: (0.013463621687539826, 0.08653637831246015)
    assert (interval.low, interval.high) == pytest.approx((0.013463621687539826, 0.08653637831246015), rel=1e-9)


def test_difference_interval_without_conversions_collapses_to_zero():
    interval = difference_interval(**pair(0, 100, 0, 100))

    assert (interval.estimate, interval.low, interval.high) == (0, 0, 0)


def test_difference_interval_stays_within_minus_one_and_one():
    interval = difference_interval(**pair(0, 3, 3, 3))

    assert interval.high <= 1 and interval.low >= -1


@pytest.mark.parametrize(
    ("counts", "alpha", "ratio_low", "ratio_high"),
    [
        ((200, 1000, 250, 1000), 0.05, 1.060946250837563, 1.4727419025860036),
        ((11, 50, 14, 40), 0.10, 0.9056229923228841, 2.7947520734266083),
        ((505, 44910, 500, 44925), 0.05, 0.8752528283989683, 1.1192669194212572),
    ],
)
def test_relative_uplift_interval_matches_statsmodels_log_ratio(counts, alpha, ratio_low, ratio_high):
    interval = relative_uplift_interval(**pair(*counts), alpha=alpha)

    xa, na, xb, nb = counts
    assert interval.estimate == pytest.approx((xb / nb) / (xa / na) - 1, rel=1e-12)
    # statsmodels gives the ratio; the relative uplift is ratio − 1
    assert interval.low == pytest.approx(ratio_low - 1, rel=1e-9)
    assert interval.high == pytest.approx(ratio_high - 1, rel=1e-9)


def test_holm_adjustment_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.5), method = "holm")
    assert holm_adjusted([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm_adjusted([0.3]) == [0.3] and holm_adjusted([]) == []
    assert holm_adjusted([0.6, 0.7]) == [1.0, 1.0]


def test_relative_uplift_is_undefined_without_conversions_in_a_group():
    assert relative_uplift_interval(**pair(0, 100, 5, 100)) is None
    assert relative_uplift_interval(**pair(5, 100, 0, 100)) is None


# --- chi-square -----------------------------------------------------------------------------------


def test_chi_square_matches_the_openintro_search_algorithm_example():
    result = chi_square_test(successes=[1489, 751, 682], totals=[5000, 2500, 2500])

    assert result.statistic == pytest.approx(6.12, abs=0.005)  # OpenIntro: X² = 6.12, df = 2, p = 0.047
    assert result.dof == 2
    assert result.p_value == pytest.approx(0.047, abs=0.0005)
    # statsmodels proportions_chisquare; with two degrees of freedom the tail is exactly exp(−X²/2)
    assert result.statistic == pytest.approx(6.12032270124296, rel=1e-9)
    assert result.p_value == pytest.approx(math.exp(-result.statistic / 2), rel=1e-9)


def test_chi_square_matches_a_hand_computation_on_three_variants():
    successes, totals = [40, 55, 70], [500, 500, 500]
    pooled = sum(successes) / sum(totals)
    expected = [(n * pooled, n * (1 - pooled)) for n in totals]
    statistic = sum(
        (x - e1) ** 2 / e1 + (n - x - e0) ** 2 / e0 for x, n, (e1, e0) in zip(successes, totals, expected, strict=True)
    )

    result = chi_square_test(successes=successes, totals=totals)

    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.statistic == pytest.approx(9.19305413687436, rel=1e-9)  # statsmodels proportions_chisquare
    assert result.p_value == pytest.approx(math.exp(-statistic / 2), rel=1e-9)


def test_chi_square_on_two_groups_is_the_square_of_z_without_yates_correction():
    z = two_proportion_ztest(**pair(200, 1000, 250, 1000))

    chi = chi_square_test(successes=[200, 250], totals=[1000, 1000])

    assert chi.statistic == pytest.approx(z.statistic**2, rel=1e-9)
    assert chi.p_value == pytest.approx(z.p_value, rel=1e-9)


@pytest.mark.parametrize(("successes", "totals"), [([0, 0, 0], [40, 50, 60]), ([40, 50, 60], [40, 50, 60])])
def test_chi_square_without_variation_gives_p_value_one(successes, totals):
    result = chi_square_test(successes=successes, totals=totals)

    assert (result.statistic, result.p_value, result.dof) == (0, 1, 2)


def test_chi_square_of_identical_rates_is_zero():
    result = chi_square_test(successes=[10, 20, 30], totals=[100, 200, 300])

    assert result.statistic == pytest.approx(0, abs=1e-12)
    assert result.p_value == pytest.approx(1)


def test_chi_square_needs_two_groups():
    with pytest.raises(ValueError):
        chi_square_test(successes=[3], totals=[10])


# --- sample size ----------------------------------------------------------------------------------


def test_sample_size_matches_r_power_prop_test_example():
    # power.prop.test(p1 = .50, p2 = .75, power = .90) → n = 76.7 per group
    assert sample_size_per_group(baseline_rate=0.5, minimum_detectable_effect=0.25, alpha=0.05, power=0.9) == 77


@pytest.mark.parametrize(
    ("baseline", "effect", "exact"),
    [(0.2, 0.05, 1093.7390457661652), (0.1, 0.02, 3840.8474824362734), (0.65, 0.2, 72.3930103157425)],
)
def test_sample_size_matches_statsmodels_fleiss_formula(baseline, effect, exact):
    assert sample_size_per_group(
        baseline_rate=baseline, minimum_detectable_effect=effect, alpha=0.05, power=0.8
    ) == math.ceil(exact)


def test_sample_size_matches_a_hand_computation():
    p1, p2 = 0.05, 0.07
    mean = (p1 + p2) / 2
    z_alpha, z_beta = 1.959963984540054, 0.8416212335729143  # 97.5 % and 80 % standard normal quantiles
    n = (z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / 0.02**2

    assert sample_size_per_group(baseline_rate=p1, minimum_detectable_effect=0.02, alpha=0.05, power=0.8) == math.ceil(
        n
    )


def test_sample_size_grows_for_smaller_effects_and_more_power():
    small = sample_size_per_group(baseline_rate=0.1, minimum_detectable_effect=0.01, alpha=0.05, power=0.8)
    large = sample_size_per_group(baseline_rate=0.1, minimum_detectable_effect=0.05, alpha=0.05, power=0.8)
    powerful = sample_size_per_group(baseline_rate=0.1, minimum_detectable_effect=0.05, alpha=0.05, power=0.95)

    assert small > large and powerful > large


def test_sample_size_near_one_hundred_percent_tests_the_lower_rate():
    # 0.95 + 0.1 would pass 100 %: the formula uses 0.85, which by symmetry equals 0.05 → 0.15
    high = sample_size_per_group(baseline_rate=0.95, minimum_detectable_effect=0.1, alpha=0.05, power=0.8)
    low = sample_size_per_group(baseline_rate=0.05, minimum_detectable_effect=0.1, alpha=0.05, power=0.8)

    assert high == low


@pytest.mark.parametrize(
    "arguments",
    [
        {"baseline_rate": 1.2, "minimum_detectable_effect": 0.1, "alpha": 0.05, "power": 0.8},
        {"baseline_rate": 0.2, "minimum_detectable_effect": 0, "alpha": 0.05, "power": 0.8},
        {"baseline_rate": 0.2, "minimum_detectable_effect": 0.1, "alpha": 0, "power": 0.8},
        {"baseline_rate": 0.2, "minimum_detectable_effect": 0.1, "alpha": 0.05, "power": 1},
        {"baseline_rate": 0.5, "minimum_detectable_effect": 0.6, "alpha": 0.05, "power": 0.8},
    ],
)
def test_sample_size_refuses_impossible_parameters(arguments):
    with pytest.raises(ValueError):
        sample_size_per_group(**arguments)


def test_still_needed_is_never_negative():
    assert still_needed(needed=100, exposed=40) == 60
    assert still_needed(needed=100, exposed=140) == 0


# --- not enough data ------------------------------------------------------------------------------


def test_enough_data_needs_thirty_exposed_per_variant():
    ok, reason = enough_data(successes=[10, 10], totals=[100, 29])

    assert not ok and "at least 30" in reason and "29" in reason


def test_enough_data_needs_five_expected_conversions_per_cell():
    # pooled rate 6 / 200 = 3 %: each variant of 100 expects 3 conversions
    ok, reason = enough_data(successes=[2, 4], totals=[100, 100])

    assert not ok and "expects 3.0" in reason


def test_enough_data_needs_five_expected_non_conversions_per_cell():
    ok, _ = enough_data(successes=[98, 97], totals=[100, 100])

    assert not ok


def test_enough_data_when_every_cell_expects_five():
    # pooled 10 / 200 = 5 %: each variant expects exactly 5 conversions
    assert enough_data(successes=[4, 6], totals=[100, 100]) == (True, "")
