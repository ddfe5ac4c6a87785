"""Predicted customer value: the BG/NBD and Gamma-Gamma models, fitted by maximum likelihood (SPEC §5).

Pure numerical code (numpy/scipy; Django only to translate the ClvFitError messages, which the value page
shows), in the notation of the papers:

- BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2)):
  while alive a customer buys at a Poisson rate λ ~ Gamma(r, α); after every purchase she drops out with
  probability p ~ Beta(a, b). Per customer: x = repeat purchases (frequency), t_x = time of the last purchase
  (recency) and T = time since the first purchase (age), all measured from the first purchase.
- Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"): the amounts of a customer's
  repeat purchases are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, independent of the purchase process.
  Per customer: x repeat purchases of mean amount m.

Parameters are fitted on their logarithms (all must be positive) with L-BFGS-B. The log-likelihoods are summed
over the distinct summary rows with their counts as weights: customers share (x, t_x, T) often enough (whole
days, small x) that this shrinks the work several times at no cost in precision.
"""

from dataclasses import asdict, dataclass

import numpy as np
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1, log_expit

# Log-parameters are kept within e^±LOG_BOUND: a parameter reaching the bound means the data cannot pin it
# down (e.g. no repeat purchase at all), which is reported rather than returned as a "fit".
LOG_BOUND = 15.0
_AT_BOUND = LOG_BOUND - 1e-3
# A Gamma of shape r ≥ 1,000 has a standard deviation within 3 % of its mean, a Beta with a + b ≥ 1,000 one of at
# most 0.016: the purchase rate (or the drop-out probability) is then the same for every customer, and the fit
# holds the concentration there (_held_homogeneous) instead of following the likelihood's ridge to infinity.
HOMOGENEOUS_CONCENTRATION = 1e3


class ClvFitError(ValueError):
    """The data cannot support a fit; the message says why in words a marketer can act on."""


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate λ ~ Gamma(r, α) (α in the time unit, weeks), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, γ) across customers."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean_spend(self) -> float:
        """E(M) of a customer we know nothing about: γp / (q − 1)."""
        return self.gamma * self.p / (self.q - 1)


def _arrays(*values: ArrayLike) -> list[NDArray[np.float64]]:
    return [np.asarray(v, dtype=np.float64) for v in values]


# --- BG/NBD ---------------------------------------------------------------------------------------------------


def bgnbd_log_likelihood_terms(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> NDArray[np.float64]:
    """Each customer's log-likelihood (FHL 2005 eq. 6, in the log form of Hardie's implementation note).

    ln L = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b) + ln(e^A3 + δ(x>0) e^A4) with
    A3 = −(r+x) ln(α+T) and A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x).
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    beta_ratio = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    # b + x − 1 is only used where x ≥ 1; the maximum keeps the log finite (b < 1 is legal) elsewhere.
    a4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return head + beta_ratio + np.logaddexp(a3, a4)


def bgnbd_log_likelihood(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> float:
    """Total log-likelihood of the customers' (x, t_x, T) under the parameters."""
    return float(bgnbd_log_likelihood_terms(params, frequency, recency, age).sum())


def _dropout_odds_log(params: BgNbdParams, x: NDArray, t_x: NDArray, big_t: NDArray) -> NDArray[np.float64]:
    """ln of a/(b+x−1) · ((α+T)/(α+t_x))^(r+x): the odds of "dropped out after the last purchase"; −∞ for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return np.where(
        x > 0,
        np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)),
        -np.inf,
    )


def bgnbd_p_alive(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> NDArray[np.float64]:
    """P(alive | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)) (FHL 2005, note eq. 13).

    A customer without repeat purchase is alive with probability 1 under BG/NBD: dropout can only happen
    right after a purchase, and the first purchase starts the clock.
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    return expit(-_dropout_odds_log(params, x, t_x, big_t))


def bgnbd_expected_purchases(
    params: BgNbdParams, horizon: float, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> NDArray[np.float64]:
    """E[Y(t) | x, t_x, T]: expected purchases in the next `horizon` time units (FHL 2005 eq. 10).

    E = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)] / (1 + δ(x>0) odds),
    z = t/(α+T+t). As written, ₂F₁ overflows for frequent buyers (c−a−b = a−1−r−x ≪ 0 makes it grow like
    (1−z)^(a−1−r−x)) while its factor underflows. Euler's transformation ₂F₁(A,B;C;z) = (1−z)^(C−A−B)
    ₂F₁(C−A, C−B; C; z) turns the product into (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z), whose parameters
    stay small and whose series converges fast, so the formula holds for any x.
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if horizon <= 0:
        return np.zeros_like(x)
    if abs(a - 1) < 1e-9:
        # The (a−1) in numerator and denominator cancel in the limit; nudging a by 1e-9 changes E by ~1e-9.
        a = 1 + 1e-9
    z = horizon / (alpha + big_t + horizon)
    with np.errstate(all="ignore"):  # failures show up as non-finite values, handled below
        tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        # With r far above a + b the first parameter is hugely negative and scipy can give NaN; Pfaff's
        # transformation, ₂F₁(r+x, a−1; a+b+x−1; −t/(α+T)), is the same value and often works there.
        bad = ~np.isfinite(tail)
        if np.any(bad):
            tail = np.where(bad, hyp2f1(r + x, a - 1, a + b + x - 1, -horizon / (alpha + big_t)), tail)
        expected = (a + b + x - 1) / (a - 1) * (1 - tail)
    bad = ~np.isfinite(expected)
    if np.any(bad):
        expected[bad] = _expected_if_alive_by_quadrature(params, horizon, x[bad], big_t[bad])
    return expected * expit(-_dropout_odds_log(params, x, t_x, big_t))


def _expected_if_alive_by_quadrature(params: BgNbdParams, horizon: float, x: NDArray, big_t: NDArray) -> NDArray:
    """E[Y(t) | alive] = E_p[(1 − (1 + p t/(α+T))^−(r+x)) / p] with p ~ Beta(a, b+x), integrated numerically.

    The fallback for the parameters where ₂F₁ fails: a and b in the hundreds or more (dropout hardly varies
    between customers), so the Beta posterior is narrow; Gauss-Legendre nodes over its mean ± 12 sd capture it.
    """
    r, alpha, a = params.r, params.alpha, params.a
    b = params.b + x
    mean = a / (a + b)
    sd = np.sqrt(mean * (1 - mean) / (a + b + 1))
    low, high = np.maximum(mean - 12 * sd, 1e-12), np.minimum(mean + 12 * sd, 1 - 1e-12)
    nodes, weights = np.polynomial.legendre.leggauss(96)
    p = low[:, None] + (high - low)[:, None] * (nodes[None, :] + 1) / 2
    log_density = (a - 1) * np.log(p) + (b[:, None] - 1) * np.log1p(-p)
    density = np.exp(log_density - log_density.max(axis=1, keepdims=True)) * weights[None, :]
    value = -np.expm1(-(r + x)[:, None] * np.log1p(p * horizon / (alpha + big_t)[:, None])) / p
    return (density * value).sum(axis=1) / density.sum(axis=1)


def bgnbd_expected_purchases_new_customer(params: BgNbdParams, horizon: float) -> float:
    """E[X(t)] for a customer just acquired (FHL 2005 eq. 9): the conditional formula with x = t_x = T = 0."""
    return float(bgnbd_expected_purchases(params, horizon, [0.0], [0.0], [0.0])[0])


def _compress(*columns: NDArray[np.float64]) -> tuple[list[NDArray[np.float64]], NDArray[np.float64]]:
    """The distinct rows of the columns and how often each occurs (the weights of the likelihood)."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(np.float64)


def _minimize(objective, start: NDArray[np.float64], what: str) -> NDArray[np.float64]:
    """L-BFGS-B on bounded log-parameters; a Nelder-Mead polish rescues the odd line-search stall."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    with np.errstate(all="ignore"):  # trial points far out may overflow; the objective maps them to +inf
        result = minimize(objective, start, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
        if not result.success or not np.isfinite(result.fun):
            result = minimize(
                objective,
                result.x if np.isfinite(result.fun) else start,
                method="Nelder-Mead",
                bounds=bounds,
                options={"maxiter": 20_000, "xatol": 1e-10, "fatol": 1e-12},
            )
    if not result.success or not np.isfinite(result.fun):
        raise ClvFitError(
            _("The %(model)s fit did not converge (%(reason)s).") % {"model": what, "reason": result.message}
        )
    return result.x


def _refuse_parameters_at_bound(log_params: NDArray[np.float64], names: list[str], what: str) -> None:
    """A parameter at e^±LOG_BOUND is one the data cannot pin down: say which, and which way it runs."""
    at_bound = np.flatnonzero(np.abs(log_params) >= _AT_BOUND)
    if at_bound.size:
        index = int(at_bound[0])
        raise ClvFitError(
            _(
                "The %(model)s fit did not converge: %(parameter)s runs off to %(limit)s; the purchase history is "
                "too short or too uniform to estimate the model."
            )
            % {"model": what, "parameter": names[index], "limit": "0" if log_params[index] < 0 else _("infinity")}
        )


def _held_homogeneous(objective, log_params: NDArray[np.float64], what: str) -> NDArray[np.float64]:
    """Refit with the concentration held at HOMOGENEOUS_CONCENTRATION where the free fit ran past it.

    When every customer buys at the same rate (or drops out with the same probability), the likelihood keeps
    rising, ever more slowly, as r (or a + b) grows with the mean r/α (or a/(a+b)) fixed: a ridge without a top.
    Where an optimizer stops on it is an accident of its tolerances (a + b ≈ 4,500 with scipy 1.14, the bound
    e^15 with 1.15 and later on the same data). Holding the concentration and fitting the mean is a well-posed
    problem with the same answer everywhere, and its predictions are those of the limit to within a few percent.
    """
    log_r, log_alpha, log_a, log_b = log_params
    held = np.log(HOMOGENEOUS_CONCENTRATION)
    hold_rate = log_r >= held
    hold_dropout = np.logaddexp(log_a, log_b) >= held
    if not (hold_rate or hold_dropout):
        return log_params

    def expand(reduced: NDArray[np.float64]) -> NDArray[np.float64]:
        rest = list(reduced)
        rate = [held, held - rest.pop(0)] if hold_rate else [rest.pop(0), rest.pop(0)]
        if hold_dropout:
            logit = rest.pop(0)
            rest = [held + log_expit(logit), held + log_expit(-logit)]
        return np.array(rate + rest)

    start = [log_r - log_alpha] if hold_rate else [log_r, log_alpha]
    start += [log_a - log_b] if hold_dropout else [log_a, log_b]
    reduced = _minimize(lambda v: objective(expand(v)), np.clip(start, -LOG_BOUND / 2, LOG_BOUND / 2), what)
    return expand(reduced)


def bgnbd_fit(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for the customers' (x, t_x, T); raises ClvFitError on degenerate data."""
    x, t_x, big_t = _arrays(frequency, recency, age)
    if x.size == 0:
        raise ClvFitError(_("No customer has a completed order yet: there is nothing to fit the purchase model on."))
    if not np.any(x > 0):
        raise ClvFitError(
            _(
                "None of the %(customers)s customers has a repeat purchase yet: the purchase model (BG/NBD) needs "
                "repeat buyers to tell how often customers buy and how soon they drop out."
            )
            % {"customers": x.size}
        )
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > big_t) or np.any(big_t < 0):
        raise ValueError("Each customer needs 0 ≤ recency ≤ age and a frequency ≥ 0.")
    if not np.any(big_t > 0):
        raise ClvFitError(_("Every customer made their first purchase at the calibration end: there is no history."))
    (x, t_x, big_t), weights = _compress(x, t_x, big_t)
    total = weights.sum()
    # The Γ-function terms depend on x alone, which takes few distinct values: evaluate them once per value.
    distinct_x, x_index = np.unique(x, return_inverse=True)
    repeat = x > 0
    distinct_x_or_1 = np.maximum(distinct_x, 1)

    def objective(log_params: NDArray[np.float64]) -> float:
        r, alpha, a, b = np.exp(log_params)
        per_x = (
            gammaln(r + distinct_x)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + distinct_x)
            - gammaln(b)
            - gammaln(a + b + distinct_x)
        )
        log_odds_x = np.log(a) - np.log(b + distinct_x_or_1 - 1)
        a3 = -(r + x) * np.log(alpha + big_t)
        a4 = np.where(repeat, log_odds_x[x_index] - (r + x) * np.log(alpha + t_x), -np.inf)
        terms = per_x[x_index] + np.logaddexp(a3, a4)  # = bgnbd_log_likelihood_terms, factored for speed
        value = -float(weights @ terms) / total  # per customer: keeps the gradient O(1) whatever the size
        return value if np.isfinite(value) else np.inf

    what = _("purchase model (BG/NBD)")
    log_params = _held_homogeneous(objective, _minimize(objective, np.zeros(4), what), what)
    # A mean drop-out probability per purchase this small is the optimizer heading for "nobody ever leaves".
    if expit(log_params[2] - log_params[3]) < 1e-3:
        raise ClvFitError(
            _(
                "Not enough information about churn yet: no customer's history shows a drop-out (everyone still buys "
                "at their usual pace), so the purchase model (BG/NBD) cannot estimate how customers leave. The "
                "previous predictions stay; fit again when the history is longer."
            )
        )
    _refuse_parameters_at_bound(log_params, ["r", "α", "a", "b"], what)
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    return BgNbdParams(r, alpha, a, b, log_likelihood=float(-objective(log_params) * total))


# --- Gamma-Gamma ----------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood_terms(
    params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike
) -> NDArray[np.float64]:
    """Each repeat customer's log-likelihood of the mean spend m over x purchases (Fader & Hardie 2013 eq. 3).

    ln f(m | x) = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(γ + mx).
    """
    x, m = _arrays(frequency, monetary)
    p, q, gamma = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gamma + m * x)
    )


def gamma_gamma_fit(frequency: ArrayLike, monetary: ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters on customers with x ≥ 1 repeat purchases of mean spend m > 0."""
    x, m = _arrays(frequency, monetary)
    if x.size == 0 or np.any(x < 1) or np.any(m <= 0):
        if x.size == 0:
            raise ClvFitError(
                _(
                    "No customer has a repeat purchase with a positive amount yet: the spend model (Gamma-Gamma) is "
                    "fitted on repeat purchases only."
                )
            )
        raise ValueError("Gamma-Gamma is fitted on customers with frequency ≥ 1 and monetary value > 0 only.")
    if np.ptp(m) == 0:
        raise ClvFitError(
            _(
                "Every repeat customer spent exactly the same mean amount: the spend model (Gamma-Gamma) cannot tell "
                "how spend varies between customers."
            )
        )
    total = float(x.size)
    # As for BG/NBD: Γ-terms per distinct x, logs of the data once; per evaluation one log per customer remains.
    distinct_x, x_index = np.unique(x, return_inverse=True)
    log_m = np.log(m)
    sum_log_m, x_log_m, x_log_x = float(log_m.sum()), float(x @ log_m), float(x @ np.log(x))

    def objective(log_params: NDArray[np.float64]) -> float:
        p, q, gamma = np.exp(log_params)
        per_x = gammaln(p * distinct_x + q) - gammaln(p * distinct_x)
        log_likelihood = (
            per_x[x_index].sum()
            + total * (q * np.log(gamma) - gammaln(q))
            + p * x_log_m
            - sum_log_m
            + p * x_log_x
            - ((p * x + q) * np.log(gamma + m * x)).sum()
        )  # = gamma_gamma_log_likelihood_terms(...).sum(), factored for speed
        value = -float(log_likelihood) / total
        return value if np.isfinite(value) else np.inf

    # Start at a sensible scale (γ ≈ q·mean/p with p = q = 1 → γ ≈ mean spend): the likelihood is flat far off.
    start = np.array([0.0, np.log(2.0), np.log(float(np.mean(m)))])
    what = _("spend model (Gamma-Gamma)")
    log_params = _minimize(objective, start, what)
    _refuse_parameters_at_bound(log_params, ["p", "q", "γ"], what)
    p, q, gamma = (float(v) for v in np.exp(log_params))
    if q <= 1:
        raise ClvFitError(
            _(
                "The spend model (Gamma-Gamma) gives q = %(q)s ≤ 1: mean spend per customer would be unbounded (a few "
                "extreme spenders dominate); predicted spend is not available."
            )
            % {"q": number_format(q, 3)}
        )
    return GammaGammaParams(p, q, gamma, log_likelihood=float(-objective(log_params) * total))


def gamma_gamma_expected_spend(params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike) -> NDArray:
    """E(M | p, q, γ, m, x): a customer's expected mean spend per purchase (Fader & Hardie 2013 eq. 5).

    (γ + m x) p / (p x + q − 1): a weighted mean of the population mean γp/(q−1) and the customer's own m,
    leaning to m the more repeat purchases there are; a customer without any (x = 0) gets the population mean.
    """
    x, m = _arrays(frequency, monetary)
    return (params.gamma + m * x) * params.p / (params.p * x + params.q - 1)
