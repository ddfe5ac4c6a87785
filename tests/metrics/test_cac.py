"""CAC per channel and month, and CLV:CAC per channel, against spend and buyers worked out by hand."""

from datetime import date
from decimal import Decimal

import pytest

from campaigns.models import MarketingSpend, SpendPeriod
from lifecycle.models import Channel, OrderStatus
from metrics.cac import cac_compute
from metrics.filters import MetricFilters
from metrics.models import ClvFit, CustomerValue
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-03-15", 18)


def channel(key: str) -> Channel:
    return Channel.objects.get(key=key)


def spend(key: str, period: str, day: str, amount: str, campaign: str = "") -> None:
    MarketingSpend.objects.create(
        channel=channel(key),
        period=period,
        date=date.fromisoformat(day),
        amount=Decimal(amount),
        campaign_code=campaign,
    )


def buyer(key: str, channel_key: str | None, *orders: tuple[str, str]):
    customer = CustomerFactory(
        external_id=key,
        first_seen_at=at("2023-12-01"),
        acquisition_channel=channel(channel_key) if channel_key else None,
    )
    for day, amount in orders:
        OrderFactory(customer=customer, placed_at=at(day), amount=Decimal(amount))
    return customer


@pytest.fixture
def history() -> dict:
    """Spend: email Jan 100 (monthly) + 20 (daily, campaign x) and Feb 30 (daily); paid_ads Feb 200 (monthly) and
    999 on a day after as_of; organic_search Mar 50 (monthly) without customers.

    Buyers (first completed order): a, b by email in Jan (revenue 35, 30); c by paid_ads in Jan (50); d by
    paid_ads in Feb (20); g without a channel in Jan (10). e was acquired by email but only cancelled an order.
    """
    spend("email", SpendPeriod.MONTH, "2024-01-01", "100.00")
    spend("email", SpendPeriod.DAY, "2024-01-15", "20.00", campaign="x")
    spend("email", SpendPeriod.DAY, "2024-02-03", "30.00")
    spend("paid_ads", SpendPeriod.MONTH, "2024-02-01", "200.00")
    spend("paid_ads", SpendPeriod.DAY, "2024-03-20", "999.00")
    spend("organic_search", SpendPeriod.MONTH, "2024-03-01", "50.00")
    customers = {
        "a": buyer("a", "email", ("2024-01-05", "10.00"), ("2024-02-10", "20.00"), ("2024-03-01", "5.00")),
        "b": buyer("b", "email", ("2024-01-20", "30.00")),
        "c": buyer("c", "paid_ads", ("2024-01-31", "40.00"), ("2024-03-05", "10.00")),
        "d": buyer("d", "paid_ads", ("2024-02-01", "15.00"), ("2024-02-20", "5.00"), ("2024-04-02", "99.00")),
        "g": buyer("g", None, ("2024-01-12", "10.00")),
        "e": buyer("e", "email"),
    }
    OrderFactory(customer=customers["e"], placed_at=at("2024-02-01"), status=OrderStatus.CANCELLED)
    return customers


def predict(customer, expected_spend_365d: float) -> None:
    fit = ClvFit.objects.first() or ClvFit.objects.create(
        as_of=AS_OF, fitted_at=AS_OF, customers=5, repeat_customers=3, r=1, alpha=1, a=1, b=1, log_likelihood=-1
    )
    CustomerValue.objects.create(
        customer=customer,
        fit=fit,
        frequency=1,
        recency_weeks=1,
        age_weeks=10,
        monetary_value=10,
        p_alive=0.9,
        expected_purchases_90d=1,
        expected_purchases_365d=2,
        expected_spend_90d=expected_spend_365d / 4,
        expected_spend_365d=expected_spend_365d,
    )


def channels(result: dict) -> dict[str, dict]:
    return {row["channel"]: row for row in result["channels"]}


def test_cac_sums_daily_and_monthly_spend_into_the_month_and_divides_by_new_customers(history):
    email = channels(cac_compute(filters=MetricFilters(as_of=AS_OF)))["email"]

    assert email["months"] == [
        {"month": "2024-01", "spend": 120.0, "new_customers": 2, "cac": 60.0},
        {"month": "2024-02", "spend": 30.0, "new_customers": 0, "cac": None},  # no new customers: no CAC
    ]
    assert (email["spend"], email["new_customers"], email["cac"]) == (150.0, 2, 75.0)


def test_cac_counts_spend_up_to_as_of_and_is_null_without_new_customers(history):
    result = channels(cac_compute(filters=MetricFilters(as_of=AS_OF)))

    paid = result["paid_ads"]
    assert paid["months"] == [
        {"month": "2024-01", "spend": 0.0, "new_customers": 1, "cac": 0.0},
        {"month": "2024-02", "spend": 200.0, "new_customers": 1, "cac": 200.0},
    ]  # the 999.00 of March 20 is after as_of
    assert (paid["spend"], paid["new_customers"], paid["cac"]) == (200.0, 2, 100.0)
    search = result["organic_search"]
    assert (search["spend"], search["new_customers"], search["cac"]) == (50.0, 0, None)
    assert search["historical_clv"] is None and search["clv_cac"] is None


def test_clv_to_cac_uses_revenue_per_customer_acquired_through_the_channel(history):
    result = channels(cac_compute(filters=MetricFilters(as_of=AS_OF)))

    # email: (35 + 30) / 2 = 32.50 against a CAC of 75; paid_ads: (50 + 20) / 2 = 35 against 100
    assert (result["email"]["historical_clv"], result["email"]["clv_cac"]) == (32.5, round(32.5 / 75, 2))
    assert (result["paid_ads"]["historical_clv"], result["paid_ads"]["clv_cac"]) == (35.0, 0.35)
    assert result["email"]["predicted_clv"] is None and result["email"]["predicted_clv_cac"] is None


def test_predicted_clv_adds_the_mean_stored_prediction_to_the_historical_clv(history):
    predict(history["c"], 50.0)
    predict(history["d"], 30.0)
    predict(history["a"], 15.0)

    result = channels(cac_compute(filters=MetricFilters(as_of=AS_OF)))

    assert (result["paid_ads"]["predicted_clv"], result["paid_ads"]["predicted_clv_cac"]) == (75.0, 0.75)
    # email: only a has a prediction, so its mean is 15: 32.50 + 15 = 47.50 against 75
    assert (result["email"]["predicted_clv"], result["email"]["predicted_clv_cac"]) == (47.5, round(47.5 / 75, 2))


def test_totals_give_the_blended_cac_including_customers_without_a_channel(history):
    totals = cac_compute(filters=MetricFilters(as_of=AS_OF))["totals"]

    # 150 + 200 + 50 spent; a, b, c, d and g (no channel) acquired
    assert totals == {"spend": 400.0, "new_customers": 5, "unattributed_new_customers": 1, "cac": 80.0}


def test_channel_filter_keeps_its_spend_and_customers(history):
    result = cac_compute(filters=MetricFilters(as_of=AS_OF, channel="email"))

    assert list(channels(result)) == ["email"]
    assert result["totals"] == {"spend": 150.0, "new_customers": 2, "unattributed_new_customers": 0, "cac": 75.0}


def test_cohort_range_narrows_customers_and_spend_to_its_dates(history):
    filters = MetricFilters(as_of=AS_OF, cohort_start=date(2024, 2, 1), cohort_end=date(2024, 2, 29))

    result = cac_compute(filters=filters)

    # nobody was first seen in February, so no new customers; spend: email's Feb 30, paid_ads' monthly Feb 200
    assert {row["channel"]: (row["spend"], row["new_customers"], row["cac"]) for row in result["channels"]} == {
        "email": (30.0, 0, None),
        "paid_ads": (200.0, 0, None),
    }


def test_no_spend_and_no_customers_give_an_empty_result():
    result = cac_compute(filters=MetricFilters(as_of=AS_OF))

    assert result["channels"] == []
    assert result["totals"] == {"spend": 0.0, "new_customers": 0, "unattributed_new_customers": 0, "cac": None}


def test_cac_takes_two_queries_whatever_the_number_of_customers(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        cac_compute(filters=MetricFilters(as_of=AS_OF, cohort_start=date(2023, 1, 1)))
