"""The CLV math (metrics.clv) against hand computations and the published CDNOW fits, and the fit_clv command."""

import csv
import json
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy.special import hyp2f1

from lifecycle.cdnow import CdnowFileError, CdnowFormat, cdnow_default_path, cdnow_import
from lifecycle.models import Customer, Order
from metrics import clv
from metrics.clv import (
    BgNbdParams,
    ClvFitError,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_new_customer,
    bgnbd_fit,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    gamma_gamma_expected_spend,
    gamma_gamma_fit,
    gamma_gamma_log_likelihood_terms,
)
from metrics.models import ClvFit, CustomerValue, MetricsRun
from tests.conftest import missing_dependency
from tests.factories import OrderFactory, at

SHARED_CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow"
# FHL 2005 (BG/NBD) and Fader & Hardie 2013 (Gamma-Gamma) on the CDNOW sample's 39-week calibration period
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_LOG_LIKELIHOOD = -9582.4
# The calibration end that reproduces the literature: the 39 weeks are days 1..273 of 1997, i.e. through
# 1997-09-30 inclusive (T = 272/7 = 38.86 weeks for a customer who first bought on 1 January).
CALIBRATION_END = datetime.combine(date(1997, 9, 30), time.max, UTC)


def cdnow_file(name: str) -> Path:
    """A CDNOW file from the shared data copy, else from the installed lifetimes package (make test installs it)."""
    path = SHARED_CDNOW / name
    if path.is_file():
        return path
    try:
        path = cdnow_default_path(CdnowFormat.SAMPLE).parent / name
    except CdnowFileError:
        missing_dependency("the CDNOW files are not available")
    if not path.is_file():
        missing_dependency(f"{name} is not available")
    return path


# --- p(alive) and expected purchases by hand ---------------------------------------------------------------------


def test_a_customer_without_repeat_purchase_is_alive_for_sure():
    # BG/NBD: dropout happens only right after a purchase, so x = 0 gives P(alive) = 1 whatever T.
    p_alive = bgnbd_p_alive(PUBLISHED, [0, 0, 0], [0, 0, 0], [0.0, 10.0, 500.0])
    assert p_alive.tolist() == [1.0, 1.0, 1.0]


def test_p_alive_matches_the_formula_computed_by_hand():
    r, alpha, a, b = PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b
    x, t_x, big_t = 2, 30.43, 38.86
    by_hand = 1 / (1 + a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x))
    assert bgnbd_p_alive(PUBLISHED, [x], [t_x], [big_t])[0] == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.7266, abs=1e-4)


def test_expected_purchases_reproduce_the_worked_example_of_the_paper():
    # FHL 2005: a customer with x=2, t_x=30.43, T=38.86 is expected to make 1.226 purchases in the next 39 weeks.
    assert bgnbd_expected_purchases(PUBLISHED, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)


def _series_2f1(a: float, b: float, c: float, z: float) -> float:
    """₂F₁ by its power series, summed in plain Python (|z| < 1)."""
    term, total, n = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        n += 1
    return total


@pytest.mark.parametrize(
    ("x", "t_x", "big_t", "horizon"), [(0, 0, 0, 10), (0, 0, 30, 52), (1, 5, 30, 13), (5, 20, 30, 52), (20, 38, 39, 52)]
)
def test_expected_purchases_equal_the_untransformed_formula_of_the_paper(x, t_x, big_t, horizon):
    # eq. 10 as printed, with ₂F₁ summed by hand: the Euler-transformed implementation must agree
    r, alpha, a, b = PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b
    z = horizon / (alpha + big_t + horizon)
    bracket = 1 - ((alpha + big_t) / (alpha + big_t + horizon)) ** (r + x) * _series_2f1(r + x, b + x, a + b + x - 1, z)
    odds = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    by_hand = (a + b + x - 1) / (a - 1) * bracket / (1 + odds)
    assert bgnbd_expected_purchases(PUBLISHED, horizon, [x], [t_x], [big_t])[0] == pytest.approx(by_hand, rel=1e-9)


def test_a_new_customer_is_expected_to_buy_as_the_unconditional_formula_says():
    r, alpha, a, b, t = PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b, 52.0
    eq_9 = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert bgnbd_expected_purchases_new_customer(PUBLISHED, t) == pytest.approx(eq_9, rel=1e-10)


def test_near_homogeneous_dropout_is_predicted_by_quadrature_where_hyp2f1_fails():
    # a, b in the thousands (fits on short histories): scipy's ₂F₁ gives NaN, the Beta integral does not
    params = BgNbdParams(r=1.806, alpha=12.7, a=4.829e4, b=1.623e5)
    expected = bgnbd_expected_purchases(params, 52, [0, 2, 5], [0, 10, 20], [10, 20, 30])
    assert np.all(np.isfinite(expected)) and np.all(expected > 0)
    # and the quadrature agrees with ₂F₁ where both work
    moderate = BgNbdParams(r=0.59, alpha=1.82, a=30, b=200)
    x, big_t = np.array([0.0, 1, 3, 10]), np.array([5.0, 20, 30, 39])
    by_hyp2f1 = bgnbd_expected_purchases(moderate, 52, x, big_t, big_t) / bgnbd_p_alive(moderate, x, big_t, big_t)
    assert clv._expected_if_alive_by_quadrature(moderate, 52, x, big_t) == pytest.approx(by_hyp2f1, rel=1e-10)


def test_frequent_buyers_get_finite_predictions_where_the_printed_formula_overflows():
    expected = bgnbd_expected_purchases(PUBLISHED, 52, [300, 1000], [38.9, 38.9], [39.0, 39.0])
    assert np.all(np.isfinite(expected)) and expected[1] > expected[0] > 100


def test_predictions_move_the_right_way():
    horizons = [bgnbd_expected_purchases(PUBLISHED, t, [3], [20], [30])[0] for t in (0, 4, 13, 52, 520)]
    assert horizons[0] == 0 and horizons == sorted(horizons)
    # longer silence since the last purchase → less likely alive and fewer expected purchases
    silent = bgnbd_p_alive(PUBLISHED, [3, 3, 3], [20, 20, 20], [20, 30, 60])
    assert silent[0] > silent[1] > silent[2]
    later_last_purchase = bgnbd_p_alive(PUBLISHED, [3, 3, 3], [5, 15, 29], [30, 30, 30])
    assert later_last_purchase[0] < later_last_purchase[1] < later_last_purchase[2]
    # among customers who just bought, more purchases → more expected
    busy = bgnbd_expected_purchases(PUBLISHED, 52, [1, 5, 20], [30, 30, 30], [30, 30, 30])
    assert busy[0] < busy[1] < busy[2]


def test_gamma_gamma_expected_spend_shrinks_a_customer_mean_towards_the_population_mean():
    params = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    population = params.population_mean_spend
    assert population == pytest.approx(15.44 * 6.25 / 2.74)
    spend = gamma_gamma_expected_spend(params, [0, 1, 5, 1000], [0.0, 100.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < spend[3] < 100.0
    assert spend[3] == pytest.approx(100.0, rel=0.01)


def test_gamma_gamma_log_likelihood_matches_the_density_by_hand():
    p, q, gamma, x, m = 6.25, 3.74, 15.44, 3, 40.0
    by_hand = (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(gamma)
        + (p * x - 1) * math.log(m)
        + p * x * math.log(x)
        - (p * x + q) * math.log(gamma + m * x)
    )
    assert gamma_gamma_log_likelihood_terms(GammaGammaParams(p, q, gamma), [x], [m])[0] == pytest.approx(by_hand)


# --- degenerate data -------------------------------------------------------------------------------------------


def test_no_customers_is_a_clear_error():
    with pytest.raises(ClvFitError, match="No customer has a completed order"):
        bgnbd_fit([], [], [])


def test_only_one_time_buyers_is_a_clear_error():
    with pytest.raises(ClvFitError, match="None of the 3 customers has a repeat purchase"):
        bgnbd_fit([0, 0, 0], [0, 0, 0], [5, 10, 20])
    with pytest.raises(ClvFitError, match="fitted on repeat purchases only"):
        gamma_gamma_fit([], [])


def test_identical_spend_cannot_fit_the_spend_model():
    with pytest.raises(ClvFitError, match="exactly the same mean amount"):
        gamma_gamma_fit([1, 2, 3], [20.0, 20.0, 20.0])


def test_non_convergence_is_a_clear_error(monkeypatch):
    class Failed:
        success, fun, x, message = False, 1.0, np.zeros(4), "ABNORMAL_TERMINATION_IN_LNSRCH"

    monkeypatch.setattr(clv, "minimize", lambda *args, **kwargs: Failed())
    with pytest.raises(ClvFitError, match=r"purchase model \(BG/NBD\) fit did not converge \(ABNORMAL"):
        bgnbd_fit([1, 0, 2], [5, 0, 8], [10, 10, 10])


def _buyers_every_30_days(*, dropping_out: bool) -> tuple[list[float], list[float], list[float]]:
    """Forty customers first seen on consecutive days 400 days before the end, buying every 30 days (issue 14).

    dropping_out: customer n stops after n % 4 repeat purchases (a quarter after each purchase, the same for
    everyone); otherwise everyone is still buying at the end.
    """
    frequency, recency, age = [], [], []
    for n in range(40):
        days = 400 - n
        repeats = n % 4 if dropping_out else days // 30
        frequency.append(repeats)
        recency.append(30 * repeats / 7)
        age.append(days / 7)
    return frequency, recency, age


def test_drop_out_the_same_for_everyone_gives_one_bounded_fit_whatever_the_optimizer():
    # The free likelihood rises towards a + b → ∞ (no heterogeneity): scipy 1.14 stopped at a + b ≈ 4,500, 1.15 and
    # later at the bound and refused. The fit holds a + b and estimates the rest, the same everywhere.
    data = _buyers_every_30_days(dropping_out=True)
    fit = bgnbd_fit(*data)

    assert fit.a + fit.b == pytest.approx(clv.HOMOGENEOUS_CONCENTRATION)
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.4887, abs=1e-3)
    assert (fit.r, fit.alpha) == pytest.approx((0.7518, 4.973), rel=1e-3)
    limit = BgNbdParams(fit.r, fit.alpha, fit.a * 100, fit.b * 100)  # the ridge far out: practically the limit
    for params in (fit, limit):
        assert bgnbd_p_alive(params, *data)[:4] == pytest.approx([1, 0.0361, 0.0158, 0.0099], rel=0.01)
        assert bgnbd_expected_purchases(params, 52, *data)[:4] == pytest.approx(
            [0.465, 0.0334, 0.0198, 0.0147], rel=0.01
        )


def test_a_history_where_nobody_has_dropped_out_says_there_is_not_enough_information_about_churn():
    with pytest.raises(ClvFitError, match="Not enough information about churn yet"):
        bgnbd_fit(*_buyers_every_30_days(dropping_out=False))


# --- the published CDNOW fits ------------------------------------------------------------------------------------


def test_log_likelihood_and_fit_on_the_published_cdnow_summary():
    with cdnow_file("cdnow_customers_summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    x, t_x, big_t = (np.array([float(row[k]) for row in rows]) for k in ("frequency", "recency", "T"))
    assert bgnbd_log_likelihood(PUBLISHED, x, t_x, big_t) == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.1)
    fitted = bgnbd_fit(x, t_x, big_t)
    assert (round(fitted.r, 3), round(fitted.alpha, 3), round(fitted.a, 3), round(fitted.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert fitted.log_likelihood == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.05)


@pytest.mark.django_db
def test_fit_on_the_imported_cdnow_sample_reproduces_the_published_parameters():
    from metrics.value import clv_fit

    cdnow_import(path=cdnow_file("CDNOW_sample.txt"), file_format=CdnowFormat.SAMPLE)
    fit = clv_fit(as_of=CALIBRATION_END)

    assert (fit.customers, fit.repeat_customers) == (2357, 946)
    assert (round(fit.r, 2), round(fit.alpha, 2), round(fit.a, 2), round(fit.b, 2)) == (0.24, 4.41, 0.79, 2.43)
    assert abs(fit.r - 0.243) < 5e-4 and abs(fit.alpha - 4.414) < 5e-4
    assert abs(fit.a - 0.793) < 5e-4 and abs(fit.b - 2.426) < 5e-4
    assert fit.log_likelihood == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.05)
    assert abs(fit.p - 6.25) < 5e-3 and abs(fit.q - 3.74) < 5e-3 and abs(fit.gamma - 15.44) < 5e-3
    assert CustomerValue.objects.filter(fit=fit).count() == 2357
    assert fit.duration_seconds > 0


@pytest.mark.django_db
def test_fit_clv_json_prints_the_parameters_on_the_cdnow_sample():
    cdnow_import(path=cdnow_file("CDNOW_sample.txt"), file_format=CdnowFormat.SAMPLE)
    out = StringIO()
    call_command("fit_clv", "--as-of", "1997-09-30", "--json", stdout=out)

    result = json.loads(out.getvalue())
    assert set(result) == {"bgnbd", "gamma_gamma", "customers", "repeat_customers"}
    assert set(result["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(result["gamma_gamma"]) == {"p", "q", "gamma"}
    assert (result["customers"], result["repeat_customers"]) == (2357, 946)
    bgnbd, gamma_gamma = result["bgnbd"], result["gamma_gamma"]
    assert [round(bgnbd[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert round(bgnbd["log_likelihood"], 1) == PUBLISHED_LOG_LIKELIHOOD
    assert [round(gamma_gamma[k], 2) for k in ("p", "q", "gamma")] == [6.25, 3.74, 15.44]
    run = MetricsRun.objects.get()
    assert run.status == "completed" and run.rows_written == 2357


@pytest.mark.django_db
def test_the_spec_date_1997_09_28_does_not_reproduce_the_literature():
    """Documents the calibration convention: ending two days early loses six repeaters and moves the fit."""
    from metrics.value import clv_fit

    cdnow_import(path=cdnow_file("CDNOW_sample.txt"), file_format=CdnowFormat.SAMPLE)
    fit = clv_fit(as_of=datetime.combine(date(1997, 9, 28), time.max, UTC))
    assert fit.repeat_customers == 940
    assert round(fit.b, 2) != 2.43


# --- the command -----------------------------------------------------------------------------------------------


def history_create(customers: int = 80) -> list[Customer]:
    """Customers first seen on consecutive days of January–March 2024, buying as BG/NBD assumes, to 2024-06-30.

    Seeded simulation: purchase rates ~ Gamma(0.8, 1/2 weeks), dropout after each purchase with p ~ Beta(1, 4),
    amounts ~ Gamma around a per-customer mean: heterogeneous enough for both models to fit.
    """
    rng = np.random.default_rng(42)
    created = Customer.objects.bulk_create(
        [
            Customer(external_id=f"h-{i}", first_seen_at=at("2024-01-01", 0) + timedelta(days=i % 90))
            for i in range(customers)
        ]
    )
    end = at("2024-06-30", 23)
    orders = []
    for i, customer in enumerate(created):
        rate, dropout, mean = rng.gamma(0.8, 1 / 2), rng.beta(1, 4), rng.gamma(6, 5)
        moment, days = customer.first_seen_at, []
        while moment <= end:
            days.append(moment)
            if rng.random() < dropout:
                break
            moment += timedelta(weeks=float(rng.exponential(1 / rate)))
        for number, day in enumerate(days):
            orders.append(
                Order(
                    external_id=f"h-{i}-{number}",
                    customer=customer,
                    placed_at=day.replace(hour=12),
                    amount=Decimal(str(round(float(rng.gamma(4, mean / 4)) + 1, 2))),
                )
            )
    Order.objects.bulk_create(orders)
    return created


@pytest.mark.django_db
def test_fit_clv_prints_a_summary():
    history_create()
    out = StringIO()
    call_command("fit_clv", "--as-of", "2024-06-30", stdout=out)
    assert "CLV fit as of 2024-06-30 23:59 UTC on 80 customers" in out.getvalue()
    assert "BG/NBD (weeks): r=" in out.getvalue() and "Gamma-Gamma: p=" in out.getvalue()
    assert ClvFit.objects.count() == 1


@pytest.mark.django_db
def test_fit_clv_on_one_time_buyers_fails_with_the_message_and_writes_nothing():
    OrderFactory(placed_at=at("2024-01-10"))
    OrderFactory(placed_at=at("2024-02-10"))
    with pytest.raises(CommandError, match="All 2 customers are one-time buyers so far"):
        call_command("fit_clv", "--as-of", "2024-06-30", stdout=StringIO())
    assert not ClvFit.objects.exists() and not CustomerValue.objects.exists()
    run = MetricsRun.objects.get()
    assert run.status == "failed" and "one-time buyers" in run.error


@pytest.mark.django_db
def test_fit_clv_rejects_a_bad_date():
    with pytest.raises(CommandError, match="not a YYYY-MM-DD date"):
        call_command("fit_clv", "--as-of", "30.06.2024", stdout=StringIO())
