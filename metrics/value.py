"""Predicted customer value on the stored orders: summaries, the nightly fit, per-customer predictions, accuracy.

The math lives in metrics.clv; this module turns completed orders into the models' per-customer summary with
set-based queries, stores the fit and every customer's predictions in bulk, and measures the model against a
holdout period. Conventions (those of the BG/NBD literature and of the CDNOW data): time is counted in weeks
of whole UTC days; a customer makes at most one purchase per day (the day's orders are summed); the first
purchase day starts the customer's clock and is not a repeat purchase.
"""

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Exists, FloatField, Max, OuterRef, QuerySet, Sum
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from numpy.typing import NDArray

from lifecycle.models import Order, OrderStatus
from metrics.clv import (
    BgNbdParams,
    ClvFitError,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_p_alive,
    gamma_gamma_expected_spend,
    gamma_gamma_fit,
)
from metrics.models import ClvFit, CustomerValue, MetricsRun

DAYS_PER_WEEK = 7.0
HORIZONS_DAYS = (90, 365)
# CustomerValue rows per INSERT batch: big enough to amortise round trips, small enough for SQLite's
# variable limit and flat memory at a million customers.
WRITE_CHUNK = 5_000
# Day-level rows pulled per fetch from the database cursor while building the summary arrays.
FETCH_CHUNK = 50_000
# Longest weekly series in the accuracy report; longer holdouts are sampled every few weeks.
MAX_SERIES_POINTS = 104


@dataclass(frozen=True)
class CustomerSummaries:
    """The BG/NBD / Gamma-Gamma summary of every customer with a completed order, as parallel arrays.

    `first_day` holds the first purchase day as days since 1970-01-01 (UTC), for cohorts.
    """

    customer_id: NDArray[np.int64]
    frequency: NDArray[np.int64]  # repeat purchase days
    recency: NDArray[np.float64]  # weeks from the first to the last purchase day
    age: NDArray[np.float64]  # T: weeks from the first purchase day to the calibration end's day
    monetary: NDArray[np.float64]  # mean amount of the repeat purchase days, 0 without
    first_day: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.customer_id.size)

    @property
    def repeat_customers(self) -> int:
        return int(np.count_nonzero(self.frequency))


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _completed_orders(*, after: datetime | None = None, until: datetime) -> QuerySet[Order]:
    orders = Order.objects.filter(status=OrderStatus.COMPLETED, placed_at__lte=until)
    if after is not None:
        orders = orders.filter(placed_at__gt=after)
    return orders.order_by()


def customer_summaries(*, as_of: datetime) -> CustomerSummaries:
    """(frequency, recency, T, monetary) of every customer from their completed orders at or before `as_of`.

    One GROUP BY query gives the purchase days (customer, UTC day, sum of the day's amounts), streamed in
    chunks into numpy; the per-customer reduction is array math on the rows sorted by customer and day.
    """
    rows = (
        _completed_orders(until=as_of)
        .annotate(day=TruncDate("placed_at", tzinfo=UTC))
        .values("customer_id", "day")
        .annotate(amount=Cast(Sum("amount"), FloatField()))
        .order_by("customer_id", "day")
        .values_list("customer_id", "day", "amount")
    )
    dtype = np.dtype([("customer", np.int64), ("day", np.int64), ("amount", np.float64)])
    epoch = date(1970, 1, 1).toordinal()
    iterator = rows.iterator(chunk_size=FETCH_CHUNK)
    chunks = []
    while True:
        chunk = np.fromiter(((c, d.toordinal() - epoch, a) for c, d, a in _take(iterator, FETCH_CHUNK)), dtype=dtype)
        if chunk.size == 0:
            break
        chunks.append(chunk)
    days = np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)

    end_day = _epoch_day(_utc_day(as_of))
    if days.size == 0:
        empty_int, empty_float = np.empty(0, np.int64), np.empty(0, np.float64)
        return CustomerSummaries(empty_int, empty_int, empty_float, empty_float, empty_float, empty_int)
    customer, day, amount = days["customer"], days["day"], days["amount"]
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    ends = np.r_[starts[1:], customer.size].astype(np.int64)
    purchase_days = ends - starts
    frequency = purchase_days - 1
    first_day, last_day = day[starts], day[ends - 1]
    total = np.add.reduceat(amount, starts)
    repeat_total = total - amount[starts]  # the first day starts the clock: its amount is not a repeat purchase
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    return CustomerSummaries(
        customer_id=customer[starts],
        frequency=frequency,
        recency=(last_day - first_day) / DAYS_PER_WEEK,
        age=(end_day - first_day) / DAYS_PER_WEEK,
        # Sums of two-decimal amounts carry float noise; a cent's precision is what the data has.
        monetary=np.round(np.maximum(monetary, 0.0), 6),
        first_day=first_day,
    )


def _take(iterator: Any, n: int) -> Any:
    for _step in range(n):
        try:
            yield next(iterator)
        except StopIteration:
            return


@dataclass(frozen=True)
class _Fitted:
    summaries: CustomerSummaries
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams


def _fit(summaries: CustomerSummaries, *, spend: bool = True) -> _Fitted:
    if len(summaries) == 0:
        raise ClvFitError(_("No customer has a completed order yet: there is nothing to fit the models on."))
    if summaries.repeat_customers == 0:
        raise ClvFitError(
            _(
                "All %(customers)s customers are one-time buyers so far: the purchase model (BG/NBD) and the spend "
                "model (Gamma-Gamma) both need customers with repeat purchases."
            )
            % {"customers": len(summaries)}
        )
    bgnbd = bgnbd_fit(summaries.frequency, summaries.recency, summaries.age)
    gamma_gamma = GammaGammaParams(float("nan"), float("nan"), float("nan"))
    if spend:
        # Gamma-Gamma models the amounts of repeat purchases; a zero mean (free repeat orders) has no likelihood.
        spenders = (summaries.frequency > 0) & (summaries.monetary > 0)
        gamma_gamma = gamma_gamma_fit(summaries.frequency[spenders], summaries.monetary[spenders])
    return _Fitted(summaries, bgnbd, gamma_gamma)


def clv_fit(*, as_of: datetime, run: MetricsRun | None = None) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on the history up to `as_of`, store the fit and replace every customer's value.

    Customers without a completed order get no CustomerValue row. Raises ClvFitError (nothing written) when the
    data cannot support a fit. The replacement is one transaction: readers see the old or the new predictions.
    """
    started = time.perf_counter()
    fitted = _fit(customer_summaries(as_of=as_of))
    s, bgnbd, gg = fitted.summaries, fitted.bgnbd, fitted.gamma_gamma
    p_alive = bgnbd_p_alive(bgnbd, s.frequency, s.recency, s.age)
    expected_spend = gamma_gamma_expected_spend(gg, s.frequency, s.monetary)
    # ₂F₁ is the costly part: customers sharing (x, t_x, T) share the prediction, so evaluate each distinct row once.
    distinct, inverse = np.unique(np.column_stack([s.frequency, s.recency, s.age]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    purchases = {
        days: bgnbd_expected_purchases(bgnbd, days / DAYS_PER_WEEK, distinct[:, 0], distinct[:, 1], distinct[:, 2])[
            inverse
        ]
        for days in HORIZONS_DAYS
    }
    _check_finite(bgnbd, purchases[365], expected_spend)
    columns = {
        "customer_id": s.customer_id,
        "frequency": s.frequency,
        "recency_weeks": s.recency,
        "age_weeks": s.age,
        "monetary_value": s.monetary,
        "p_alive": p_alive,
        "expected_purchases_90d": purchases[90],
        "expected_purchases_365d": purchases[365],
        "expected_spend_90d": purchases[90] * expected_spend,
        "expected_spend_365d": purchases[365] * expected_spend,
    }
    with transaction.atomic():
        fit = ClvFit.objects.create(
            as_of=as_of,
            fitted_at=timezone.now(),
            customers=len(s),
            repeat_customers=s.repeat_customers,
            r=bgnbd.r,
            alpha=bgnbd.alpha,
            a=bgnbd.a,
            b=bgnbd.b,
            log_likelihood=bgnbd.log_likelihood,
            p=gg.p,
            q=gg.q,
            gamma=gg.gamma,
            run=run,
        )
        # No signals or cascades hang on CustomerValue, so this is one DELETE statement.
        CustomerValue.objects.all().delete()
        _customer_values_write(fit, columns)
    # Measured after the commit: PostgreSQL checks the deferred foreign keys of every new row there.
    fit.duration_seconds = time.perf_counter() - started
    ClvFit.objects.filter(pk=fit.pk).update(duration_seconds=fit.duration_seconds)
    if run is not None:
        run.rows_written = len(s)
    return fit


def _check_finite(bgnbd: BgNbdParams, *predictions: NDArray) -> None:
    """Refuse to store NaN: ₂F₁ fails at extreme parameters (r or a, b in the thousands, i.e. no heterogeneity)."""
    if not all(np.all(np.isfinite(values)) for values in predictions):
        raise ClvFitError(
            _(
                "The fitted purchase model is degenerate (%(parameters)s): the history is too short or too uniform "
                "for the predictions to be computed; fit again when it is longer or more varied."
            )
            % {"parameters": f"r={bgnbd.r:.4g}, alpha={bgnbd.alpha:.4g}, a={bgnbd.a:.4g}, b={bgnbd.b:.4g}"}
        )


def _customer_values_write(fit: ClvFit, columns: dict[str, NDArray]) -> None:
    """Insert one CustomerValue per summary row, chunk by chunk so memory stays flat at millions of customers.

    PostgreSQL gets the rows through COPY (about 20× faster than INSERTs of model instances: a million rows in
    seconds rather than a minute); other databases through bulk_create.
    """
    size = len(columns["customer_id"])
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(CustomerValue._meta.db_table)
        names = [CustomerValue._meta.get_field(name).column for name in ["fit", *columns]]  # attnames resolve too
        sql = f"COPY {table} ({', '.join(connection.ops.quote_name(n) for n in names)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for start in range(0, size, WRITE_CHUNK):
                chunk = [values[start : start + WRITE_CHUNK].tolist() for values in columns.values()]
                for row in zip(*chunk, strict=True):
                    copy.write_row((fit.pk, *row))
        return
    for start in range(0, size, WRITE_CHUNK):
        chunk = {name: values[start : start + WRITE_CHUNK].tolist() for name, values in columns.items()}
        CustomerValue.objects.bulk_create(
            [CustomerValue(fit=fit, **dict(zip(chunk, row, strict=True))) for row in zip(*chunk.values(), strict=True)]
        )


# --- accuracy -------------------------------------------------------------------------------------------------


class AccuracyRow(TypedDict):
    """Predicted and actual repeat purchases (purchase days) in the holdout."""

    customers: int
    predicted: float
    actual: int
    error: float  # predicted − actual
    relative_error: float | None  # error / actual; null without actual purchases


class AccuracyCohort(AccuracyRow):
    cohort: str  # YYYY-MM of the first purchase


class BgNbdJson(TypedDict):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class AccuracyWeek(TypedDict):
    """Cumulative repeat purchases by the end of a holdout week."""

    week: float
    end: str
    predicted: float
    actual: int


class ClvAccuracyResult(TypedDict):
    """BG/NBD fitted up to the calibration end against the holdout after it (clv_accuracy)."""

    calibration_end: str
    holdout_end: str
    holdout_days: int
    holdout_weeks: float
    time_unit: str
    bgnbd: BgNbdJson
    repeat_customers: int
    total: AccuracyRow
    cohorts: list[AccuracyCohort]
    weekly: list[AccuracyWeek]


def _accuracy_row(customers: int, predicted: float, actual: int) -> AccuracyRow:
    error = predicted - actual
    return {
        "customers": int(customers),
        "predicted": round(float(predicted), 2),
        "actual": int(actual),
        "error": round(float(error), 2),
        "relative_error": round(float(error / actual), 4) if actual else None,
    }


def clv_accuracy(*, calibration_end: datetime, holdout_end: datetime | None = None) -> ClvAccuracyResult:
    """How well BG/NBD fitted on the events up to `calibration_end` predicts the repeat purchases after it.

    The fit is not stored. Customers are those with a completed order by `calibration_end` (later newcomers
    have no prediction); their actual repeat purchases are their purchase days in (calibration_end,
    holdout_end], default up to the latest order. Per cohort (month of first purchase, "YYYY-MM") and in total;
    plus the cumulative weekly series of predicted vs actual repeat purchases over the holdout.
    Pass day ends (23:59:59.999999 UTC): holdout length is counted in whole days.
    """
    if holdout_end is None:
        holdout_end = Order.objects.filter(status=OrderStatus.COMPLETED).aggregate(last=Max("placed_at"))["last"]
        if holdout_end is None:
            raise ClvFitError(_("There are no completed orders: nothing to measure the predictions against."))
    holdout_days = (_utc_day(holdout_end) - _utc_day(calibration_end)).days
    if holdout_days <= 0:
        raise ClvFitError(
            _(
                "The holdout period is empty: the last order (%(last_order)s) is not after the calibration end "
                "(%(calibration_end)s); choose an earlier calibration end."
            )
            % {"last_order": f"{holdout_end:%Y-%m-%d}", "calibration_end": f"{calibration_end:%Y-%m-%d}"}
        )
    fitted = _fit(customer_summaries(as_of=calibration_end), spend=False)
    s, params = fitted.summaries, fitted.bgnbd

    holdout = _completed_orders(after=calibration_end, until=holdout_end)
    per_customer = holdout.values("customer_id").annotate(days=Count(TruncDate("placed_at", tzinfo=UTC), distinct=True))
    actual = np.zeros(len(s), dtype=np.int64)
    ids_days = np.array(list(per_customer.values_list("customer_id", "days")), dtype=np.int64).reshape(-1, 2)
    position = np.searchsorted(s.customer_id, ids_days[:, 0])
    known = (position < len(s)) & (s.customer_id[np.minimum(position, max(len(s) - 1, 0))] == ids_days[:, 0])
    actual[position[known]] = ids_days[known, 1]

    predicted = bgnbd_expected_purchases(params, holdout_days / DAYS_PER_WEEK, s.frequency, s.recency, s.age)
    _check_finite(params, predicted)
    months = s.first_day.astype("datetime64[D]").astype("datetime64[M]")
    cohorts: list[AccuracyCohort] = []
    for month in np.unique(months):  # a few dozen months: array sums per cohort
        members = months == month
        cohorts.append(
            {"cohort": str(month), **_accuracy_row(members.sum(), predicted[members].sum(), actual[members].sum())}
        )

    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_end": holdout_end.isoformat(),
        "holdout_days": holdout_days,
        "holdout_weeks": round(holdout_days / DAYS_PER_WEEK, 4),
        "time_unit": "week",
        "bgnbd": {
            "r": params.r,
            "alpha": params.alpha,
            "a": params.a,
            "b": params.b,
            "log_likelihood": params.log_likelihood,
        },
        "repeat_customers": s.repeat_customers,
        "total": _accuracy_row(len(s), predicted.sum(), actual.sum()),
        "cohorts": cohorts,
        "weekly": _weekly_series(params, s, holdout, calibration_end, holdout_days),
    }


def _weekly_series(
    params: BgNbdParams, s: CustomerSummaries, holdout: QuerySet[Order], calibration_end: datetime, holdout_days: int
) -> list[AccuracyWeek]:
    """Cumulative predicted vs actual repeat purchases at the end of each holdout week (FHL 2005, figure 4)."""
    calibration_customer = Order.objects.filter(
        customer=OuterRef("customer_id"), status=OrderStatus.COMPLETED, placed_at__lte=calibration_end
    )
    per_day = dict(
        holdout.filter(Exists(calibration_customer))
        .annotate(day=TruncDate("placed_at", tzinfo=UTC))
        .values("day")
        .annotate(purchases=Count("customer_id", distinct=True))
        .values_list("day", "purchases")
    )
    start = _utc_day(calibration_end)
    daily = np.zeros(holdout_days + 1, dtype=np.int64)  # index = days after the calibration end's day
    for day, purchases in per_day.items():
        offset = (day - start).days
        if 0 < offset <= holdout_days:
            daily[offset] = purchases
    cumulative = np.cumsum(daily)

    step = max(1, int(np.ceil(holdout_days / DAYS_PER_WEEK / MAX_SERIES_POINTS))) * 7
    offsets = list(range(step, holdout_days, step)) + [holdout_days]
    # Customers sharing (x, t_x, T) share the prediction: evaluate each distinct row once per point.
    rows, counts = np.unique(np.column_stack([s.frequency, s.recency, s.age]), axis=0, return_counts=True)
    series: list[AccuracyWeek] = []
    for offset in offsets:
        expected = bgnbd_expected_purchases(params, offset / DAYS_PER_WEEK, rows[:, 0], rows[:, 1], rows[:, 2])
        series.append(
            {
                "week": round(offset / DAYS_PER_WEEK, 4),
                "end": (start + timedelta(days=offset)).isoformat(),
                "predicted": round(float(counts @ expected), 2),
                "actual": int(cumulative[offset]),
            }
        )
    return series
