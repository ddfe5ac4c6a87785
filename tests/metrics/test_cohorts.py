"""Cohort retention, its drill-down and historical CLV against a small history worked out by hand."""

from datetime import date
from decimal import Decimal

import pytest

from lifecycle.models import Channel, OrderStatus
from metrics.cohorts import cohort_customers, cohort_retention_compute, historical_clv_compute
from metrics.filters import MetricFilters
from metrics.models import ClvFit, CustomerValue
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-03-15", 18)
NULLS = [None] * 21  # k = 3..23 of the January cohort lie after March 2024


def channel(key: str) -> Channel:
    return Channel.objects.get(key=key)


@pytest.fixture
def history() -> dict:
    """Cohort 2024-01: a, b, c; cohort 2024-02: d; as of 2024-03-15.

    a (email):    Jan 10.00, Feb 20.00, Mar 5.00
    b (email):    Jan 30.00; a cancelled Feb order (100.00) and a refunded Mar order (50.00) don't count
    c (paid_ads): Jan 31 23:30 40.00, Mar 10.00
    d (paid_ads): Feb 1 00:30 15.00, Feb 5.00; an April order after as_of (99.00) doesn't count
    e: a lead without orders; f (email): only a cancelled order, so no cohort
    """
    email, paid = channel("email"), channel("paid_ads")
    a = CustomerFactory(external_id="a", acquisition_channel=email, first_seen_at=at("2023-12-20"))
    b = CustomerFactory(external_id="b", acquisition_channel=email, first_seen_at=at("2024-01-15"))
    c = CustomerFactory(external_id="c", acquisition_channel=paid, first_seen_at=at("2024-01-30"))
    d = CustomerFactory(external_id="d", acquisition_channel=paid, first_seen_at=at("2024-02-01", 0))
    e = CustomerFactory(external_id="e", first_seen_at=at("2024-01-02"))
    f = CustomerFactory(external_id="f", acquisition_channel=email, first_seen_at=at("2024-01-02"))
    OrderFactory(customer=a, placed_at=at("2024-01-05"), amount=Decimal("10.00"))
    OrderFactory(customer=a, placed_at=at("2024-02-10"), amount=Decimal("20.00"))
    OrderFactory(customer=a, placed_at=at("2024-03-01"), amount=Decimal("5.00"))
    OrderFactory(customer=b, placed_at=at("2024-01-20"), amount=Decimal("30.00"))
    OrderFactory(customer=b, placed_at=at("2024-02-15"), amount=Decimal("100.00"), status=OrderStatus.CANCELLED)
    OrderFactory(customer=b, placed_at=at("2024-03-10"), amount=Decimal("50.00"), status=OrderStatus.REFUNDED)
    OrderFactory(customer=c, placed_at=at("2024-01-31", 23).replace(minute=30), amount=Decimal("40.00"))
    OrderFactory(customer=c, placed_at=at("2024-03-05"), amount=Decimal("10.00"))
    OrderFactory(customer=d, placed_at=at("2024-02-01", 0).replace(minute=30), amount=Decimal("15.00"))
    OrderFactory(customer=d, placed_at=at("2024-02-20"), amount=Decimal("5.00"))
    OrderFactory(customer=d, placed_at=at("2024-04-02"), amount=Decimal("99.00"))
    OrderFactory(customer=f, placed_at=at("2024-01-10"), status=OrderStatus.CANCELLED)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}


def test_cohort_shares_count_customers_with_an_order_in_month_k_and_leave_future_cells_null(history):
    result = cohort_retention_compute(filters=MetricFilters(as_of=AS_OF))

    assert result["measure"] == "share" and result["months"] == 24
    january, february = result["cohorts"]
    assert january["cohort"] == "2024-01" and january["size"] == 3
    # k=1 (Feb): a; k=2 (Mar): a and c — b's cancelled and refunded orders don't count
    assert january["values"] == [1.0, round(1 / 3, 4), round(2 / 3, 4), *NULLS]
    assert january["active"] == [3, 1, 2, *NULLS]
    # d's April order is after as_of: March is observable and 0, April onwards is not observable yet
    assert february == {
        "cohort": "2024-02",
        "size": 1,
        "values": [1.0, 0.0, *[None] * 22],
        "active": [1, 0] + [None] * 22,
    }


def test_cohort_revenue_is_cumulative_per_cohort_customer(history):
    result = cohort_retention_compute(filters=MetricFilters(as_of=AS_OF), measure="revenue")

    january, february = result["cohorts"]
    # Jan: 10 + 30 + 40 = 80; Feb: + 20 = 100; Mar: + 5 + 10 = 115; over 3 customers
    assert january["values"] == [round(80 / 3, 2), round(100 / 3, 2), round(115 / 3, 2), *NULLS]
    assert february["values"] == [20.0, 20.0, *[None] * 22]


def test_average_row_weights_cohorts_by_size_over_the_observable_cohorts(history):
    shares = cohort_retention_compute(filters=MetricFilters(as_of=AS_OF))["average"]
    revenue = cohort_retention_compute(filters=MetricFilters(as_of=AS_OF), measure="revenue")["average"]

    assert shares["size"] == 4
    # k=1: (1 of Jan's 3 + 0 of Feb's 1) / 4; k=2: only January is observable
    assert shares["values"][:4] == [1.0, 0.25, round(2 / 3, 4), None]
    assert shares["active"][:4] == [4, 1, 2, None]
    assert revenue["values"][:4] == [25.0, 30.0, round(115 / 3, 2), None]


def test_by_channel_gives_the_average_row_per_acquisition_channel(history):
    by_channel = {
        row["channel"]: row for row in cohort_retention_compute(filters=MetricFilters(as_of=AS_OF))["by_channel"]
    }

    assert set(by_channel) == {"email", "paid_ads"}
    assert by_channel["email"]["size"] == 2
    assert by_channel["email"]["values"][:4] == [1.0, 0.5, 0.5, None]
    # paid_ads: c (Jan) and d (Feb); k=1 neither; k=2 only c's cohort is observable, and c ordered in March
    assert by_channel["paid_ads"]["values"][:4] == [1.0, 0.0, 1.0, None]


def test_channel_filter_keeps_only_customers_acquired_through_it(history):
    result = cohort_retention_compute(filters=MetricFilters(as_of=AS_OF, channel="email"))

    assert [row["cohort"] for row in result["cohorts"]] == ["2024-01"]
    assert result["cohorts"][0]["size"] == 2
    assert result["cohorts"][0]["values"][:4] == [1.0, 0.5, 0.5, None]


def test_orders_after_as_of_are_ignored(history):
    result = cohort_retention_compute(filters=MetricFilters(as_of=at("2024-01-31", 18)))

    # c's order at 23:30 on Jan 31 is after as_of and d's February orders too: January holds a and b only
    assert [(row["cohort"], row["size"]) for row in result["cohorts"]] == [("2024-01", 2)]
    assert result["cohorts"][0]["values"][:2] == [1.0, None]


def test_empty_cohort_range_gives_an_empty_well_formed_result(history):
    filters = MetricFilters(as_of=AS_OF, cohort_start=date(2025, 1, 1), cohort_end=date(2025, 2, 1))

    for measure in ("share", "revenue"):
        result = cohort_retention_compute(filters=filters, measure=measure)
        assert result["cohorts"] == [] and result["by_channel"] == []
        assert result["average"] == {"size": 0, "values": [None] * 24, "active": [None] * 24}


def test_cohort_filter_selects_customers_by_first_seen(history):
    # first seen in January 2024: b, c (a was first seen in December, d in February)
    filters = MetricFilters(as_of=AS_OF, cohort_start=date(2024, 1, 1), cohort_end=date(2024, 1, 31))

    result = cohort_retention_compute(filters=filters)

    assert [(row["cohort"], row["size"], row["active"][:3]) for row in result["cohorts"]] == [("2024-01", 2, [2, 0, 1])]


def test_unknown_measure_is_refused():
    with pytest.raises(ValueError, match="measure"):
        cohort_retention_compute(filters=MetricFilters(as_of=AS_OF), measure="orders")


def test_cohort_customers_are_the_customers_behind_a_cell(history):
    filters = MetricFilters(as_of=AS_OF)

    assert set(cohort_customers(filters=filters, cohort="2024-01", month_offset=0)) == {history[k] for k in "abc"}
    assert set(cohort_customers(filters=filters, cohort="2024-01", month_offset=1)) == {history["a"]}
    assert set(cohort_customers(filters=filters, cohort="2024-01", month_offset=2)) == {history["a"], history["c"]}
    assert set(cohort_customers(filters=filters, cohort="2024-02", month_offset=0)) == {history["d"]}
    assert not cohort_customers(filters=filters, cohort="2024-02", month_offset=2).exists()


@pytest.mark.parametrize("channel_key", [None, "email", "paid_ads"])
def test_every_cells_drill_down_count_equals_share_times_size(history, channel_key):
    filters = MetricFilters(as_of=AS_OF, channel=channel_key)

    for row in cohort_retention_compute(filters=filters)["cohorts"]:
        for k, share in enumerate(row["values"]):
            customers = cohort_customers(filters=filters, cohort=row["cohort"], month_offset=k).count()
            assert customers == (round(share * row["size"]) if share is not None else 0)


def test_cohort_customers_refuses_a_malformed_month():
    with pytest.raises(ValueError, match="YYYY-MM"):
        cohort_customers(filters=MetricFilters(as_of=AS_OF), cohort="2024-13", month_offset=0)


def test_historical_clv_by_cohort_and_channel(history):
    result = historical_clv_compute(filters=MetricFilters(as_of=AS_OF))

    # buyers: a 35.00 (3 orders), b 30.00 (1), c 50.00 (2), d 20.00 (2)
    assert result["by_cohort"] == [
        {
            "cohort": "2024-01",
            "customers": 3,
            "revenue": 115.0,
            "revenue_per_customer": round(115 / 3, 2),
            "orders_per_customer": 2.0,
            "predicted_clv_365d": None,
        },
        {
            "cohort": "2024-02",
            "customers": 1,
            "revenue": 20.0,
            "revenue_per_customer": 20.0,
            "orders_per_customer": 2.0,
            "predicted_clv_365d": None,
        },
    ]
    by_channel = {row["channel"]: row for row in result["by_channel"]}
    assert by_channel["email"]["revenue_per_customer"] == 32.5
    assert by_channel["email"]["orders_per_customer"] == 2.0
    assert by_channel["paid_ads"]["revenue_per_customer"] == 35.0
    assert result["totals"] == {
        "customers": 4,
        "revenue": 135.0,
        "revenue_per_customer": 33.75,
        "orders_per_customer": 2.0,
        "predicted_clv_365d": None,
    }


def test_historical_clv_includes_the_mean_stored_prediction_when_there_is_one(history):
    fit = ClvFit.objects.create(
        as_of=AS_OF, fitted_at=AS_OF, customers=4, repeat_customers=3, r=1, alpha=1, a=1, b=1, log_likelihood=-1
    )
    for key, spend in (("a", 100.0), ("c", 50.0)):
        CustomerValue.objects.create(
            customer=history[key],
            fit=fit,
            frequency=1,
            recency_weeks=1,
            age_weeks=10,
            monetary_value=10,
            p_alive=0.9,
            expected_purchases_90d=1,
            expected_purchases_365d=2,
            expected_spend_90d=spend / 4,
            expected_spend_365d=spend,
        )

    result = historical_clv_compute(filters=MetricFilters(as_of=AS_OF))

    assert [row["predicted_clv_365d"] for row in result["by_cohort"]] == [75.0, None]
    assert {row["channel"]: row["predicted_clv_365d"] for row in result["by_channel"]} == {
        "email": 100.0,
        "paid_ads": 50.0,
    }
    assert result["totals"]["predicted_clv_365d"] == 75.0


def test_historical_clv_of_an_empty_selection_has_no_division_by_zero(history):
    result = historical_clv_compute(filters=MetricFilters(as_of=AS_OF, channel="referral"))

    assert result["by_cohort"] == [] and result["by_channel"] == []
    assert result["totals"] == {
        "customers": 0,
        "revenue": 0.0,
        "revenue_per_customer": None,
        "orders_per_customer": None,
        "predicted_clv_365d": None,
    }


def test_cohort_metrics_take_one_query_whatever_the_number_of_customers(history, django_assert_max_num_queries):
    filters = MetricFilters(as_of=AS_OF, cohort_start=date(2023, 1, 1), channel="email")
    with django_assert_max_num_queries(1):
        cohort_retention_compute(filters=filters, measure="revenue")
    with django_assert_max_num_queries(1):
        historical_clv_compute(filters=filters)
