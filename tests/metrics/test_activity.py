"""Activity lifecycle (new, returning, resurrecting, dormant) per week and month on small histories."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lifecycle.models import Channel, OrderStatus
from metrics.activity import activity_compute, activity_customers
from metrics.filters import MetricFilters
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

WEEK_AS_OF = at("2024-01-31", 18)  # a Wednesday: the week of Monday 2024-01-29 is partial
MONTH_AS_OF = at("2024-04-30", 18)


def buyer(key: str, *moments: datetime, channel: str | None = None):
    customer = CustomerFactory(
        external_id=key,
        first_seen_at=at("2023-12-01"),
        acquisition_channel=Channel.objects.get(key=channel) if channel else None,
    )
    for moment in moments:
        OrderFactory(customer=customer, placed_at=moment, amount=Decimal("10.00"))
    return customer


@pytest.fixture
def weekly() -> dict:
    """Weeks (Mondays) W0 01-01, W1 01-08, W2 01-15, W3 01-22, W4 01-29 of 2024.

    a: W0, W1, W3      b: W1 (Sunday 23:59:59.999999), W2 (Monday 00:00)
    c: W2 twice, W4    d: a cancelled order in W0, W3, and an order after as_of
    """
    a = buyer("a", at("2024-01-02"), at("2024-01-09"), at("2024-01-24"), channel="email")
    b = buyer("b", datetime(2024, 1, 14, 23, 59, 59, 999999, tzinfo=UTC), at("2024-01-15", 0), channel="email")
    c = buyer("c", at("2024-01-17"), at("2024-01-18"), at("2024-01-30"), channel="paid_ads")
    d = buyer("d", at("2024-01-25"), at("2024-02-02"))
    OrderFactory(customer=d, placed_at=at("2024-01-03"), status=OrderStatus.CANCELLED)
    return {"a": a, "b": b, "c": c, "d": d}


@pytest.fixture
def monthly() -> dict:
    """a: Jan, Feb, Apr; b: Feb, Mar; c: Jan, Mar; d: Mar (2024)."""
    return {
        "a": buyer("a", at("2024-01-10"), at("2024-02-10"), at("2024-04-10")),
        "b": buyer("b", at("2024-02-29", 23), at("2024-03-01", 0)),
        "c": buyer("c", at("2024-01-31"), at("2024-03-15")),
        "d": buyer("d", at("2024-03-20")),
    }


def counts(result: dict) -> dict[str, tuple[int, int, int, int]]:
    return {
        row["period"]: (row["new"], row["returning"], row["resurrecting"], row["dormant"]) for row in result["periods"]
    }


def test_weekly_activity_classifies_buyers_per_iso_week(weekly):
    result = activity_compute(filters=MetricFilters(as_of=WEEK_AS_OF), interval="week")

    assert result["interval"] == "week"
    assert counts(result) == {
        "2024-01-01": (1, 0, 0, 0),  # a new (d's order is cancelled)
        "2024-01-08": (1, 1, 0, 0),  # b new (Sunday night still W1), a returning
        "2024-01-15": (1, 1, 0, -1),  # c new, b returning, a dormant
        "2024-01-22": (1, 0, 1, -2),  # d new, a resurrecting, b and c dormant
        "2024-01-29": (0, 0, 1, -2),  # c resurrecting, a and d dormant (d's February order is after as_of)
    }
    last = result["periods"][-1]
    assert last["start"] == "2024-01-29T00:00:00+00:00"
    assert last["buyers"] == 1
    assert last["quick_ratio"] == 0.5  # (new + resurrecting) / |dormant|
    assert result["periods"][0]["quick_ratio"] is None


def test_monthly_activity_classifies_buyers_per_calendar_month(monthly):
    result = activity_compute(filters=MetricFilters(as_of=MONTH_AS_OF), interval="month")

    assert counts(result) == {
        "2024-01": (2, 0, 0, 0),  # a, c new
        "2024-02": (1, 1, 0, -1),  # b new, a returning, c dormant
        "2024-03": (1, 1, 1, -1),  # d new, b returning, c resurrecting, a dormant
        "2024-04": (0, 0, 1, -3),  # a resurrecting; b, c, d dormant
    }


def test_periods_without_orders_are_listed_with_zeros_up_to_as_of(monthly):
    result = activity_compute(filters=MetricFilters(as_of=at("2024-07-01")), interval="month")

    assert counts(result)["2024-05"] == (0, 0, 0, -1)  # a ordered in April
    assert counts(result)["2024-06"] == (0, 0, 0, 0)
    assert counts(result)["2024-07"] == (0, 0, 0, 0)


def test_start_cuts_the_periods_but_not_the_history_they_are_classified_on(weekly):
    result = activity_compute(filters=MetricFilters(as_of=WEEK_AS_OF), interval="week", start=at("2024-01-17"))

    assert list(counts(result)) == ["2024-01-15", "2024-01-22", "2024-01-29"]
    assert counts(result)["2024-01-22"] == (1, 0, 1, -2)  # a still resurrecting from W1


def test_channel_filter_limits_the_buyers(weekly):
    result = activity_compute(filters=MetricFilters(as_of=WEEK_AS_OF, channel="email"), interval="week")

    assert counts(result) == {
        "2024-01-01": (1, 0, 0, 0),
        "2024-01-08": (1, 1, 0, 0),
        "2024-01-15": (0, 1, 0, -1),
        "2024-01-22": (0, 0, 1, -1),
        "2024-01-29": (0, 0, 0, -1),
    }


def test_empty_selection_gives_no_periods_or_zeros_from_start(weekly):
    filters = MetricFilters(as_of=WEEK_AS_OF, channel="referral")

    assert activity_compute(filters=filters, interval="week")["periods"] == []
    result = activity_compute(filters=filters, interval="month", start=at("2023-12-05"))
    assert counts(result) == {"2023-12": (0, 0, 0, 0), "2024-01": (0, 0, 0, 0)}


@pytest.mark.parametrize(
    ("fixture", "interval", "as_of"), [("weekly", "week", WEEK_AS_OF), ("monthly", "month", MONTH_AS_OF)]
)
def test_drill_down_counts_equal_the_activity_counts(request, fixture, interval, as_of):
    request.getfixturevalue(fixture)
    filters = MetricFilters(as_of=as_of)

    for row in activity_compute(filters=filters, interval=interval)["periods"]:
        for category in ("new", "returning", "resurrecting", "dormant"):
            customers = activity_customers(filters=filters, interval=interval, period=row["period"], category=category)
            assert customers.count() == abs(row[category]), (row["period"], category)


def test_drill_down_lists_the_customers_of_a_category(weekly):
    filters = MetricFilters(as_of=WEEK_AS_OF)

    def keys(period: str, category: str) -> set[str]:
        customers = activity_customers(filters=filters, interval="week", period=period, category=category)
        return {customer.external_id for customer in customers}

    assert keys("2024-01-22", "dormant") == {"b", "c"}
    assert keys("2024-01-22", "resurrecting") == {"a"}
    assert keys("2024-01-08", "new") == {"b"}


@pytest.mark.parametrize(
    ("interval", "period", "message"),
    [
        ("week", "2024-01-03", "Monday"),
        ("week", "January", "YYYY-MM-DD"),
        ("month", "2024-1", "YYYY-MM"),
        ("month", "2024-05", "after as_of"),
        ("year", "2024", "interval"),
    ],
)
def test_drill_down_refuses_bad_periods(interval, period, message):
    with pytest.raises(ValueError, match=message):
        activity_customers(filters=MetricFilters(as_of=MONTH_AS_OF), interval=interval, period=period, category="new")


def test_activity_takes_one_query_whatever_the_number_of_customers(weekly, django_assert_max_num_queries):
    for interval in ("week", "month"):
        with django_assert_max_num_queries(1):
            activity_compute(filters=MetricFilters(as_of=WEEK_AS_OF, channel="email"), interval=interval)
