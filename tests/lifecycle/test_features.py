"""Each feature against values computed by hand, as of a fixed moment."""

from decimal import Decimal

import pytest

from lifecycle.features import FEATURES, features_evaluate
from lifecycle.models import OrderStatus, TouchpointKind
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, TouchpointFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-06-30", 18)


def value(customer, name, as_of=AS_OF):
    return features_evaluate(names=[name], as_of=as_of, customer_ids=[customer.pk])[customer.pk][name]


@pytest.fixture
def buyer():
    """Orders: 2023-01-15 (10.00), 2024-03-01 twice on the same day (20.00 + 30.00), a cancelled one,
    and one after as_of."""
    customer = CustomerFactory(first_seen_at=at("2022-12-01", 8))
    OrderFactory(customer=customer, placed_at=at("2023-01-15"), amount=Decimal("10.00"))
    OrderFactory(customer=customer, placed_at=at("2024-03-01", 9), amount=Decimal("20.00"))
    OrderFactory(customer=customer, placed_at=at("2024-03-01", 15), amount=Decimal("30.00"))
    OrderFactory(customer=customer, placed_at=at("2024-04-01"), amount=Decimal("99.00"), status=OrderStatus.CANCELLED)
    OrderFactory(customer=customer, placed_at=at("2024-07-02"), amount=Decimal("50.00"))
    return customer


@pytest.fixture
def lead():
    return CustomerFactory(first_seen_at=at("2024-06-20", 6))


def test_order_count_counts_completed_orders_up_to_as_of(buyer, lead):
    assert value(buyer, "order_count") == 3  # same-day orders count twice; cancelled and later ones not
    assert value(lead, "order_count") == 0


def test_orders_last_365d(buyer):
    assert value(buyer, "orders_last_365d") == 2
    assert value(buyer, "orders_last_365d", as_of=at("2024-01-14")) == 1  # 2023-01-15 12:00 is within 365 days


def test_total_spent_and_avg_order_value(buyer, lead):
    assert value(buyer, "total_spent") == Decimal("60.00")
    assert value(buyer, "avg_order_value") == Decimal("20.00")
    assert value(lead, "total_spent") == Decimal("0")
    assert value(lead, "avg_order_value") is None


def test_days_since_first_and_last_order_are_whole_days(buyer, lead):
    assert value(buyer, "days_since_first_order") == 532  # 2023-01-15 12:00 → 2024-06-30 18:00
    assert value(buyer, "days_since_last_order") == 121  # 2024-03-01 15:00 → 2024-06-30 18:00
    assert value(lead, "days_since_last_order") is None


def test_days_since_first_seen(lead):
    assert value(lead, "days_since_first_seen") == 10


def test_engagements_last_30d_counts_engagement_kinds_only(buyer):
    TouchpointFactory(customer=buyer, occurred_at=at("2024-06-29"), kind=TouchpointKind.SITE_VISIT)
    TouchpointFactory(customer=buyer, occurred_at=at("2024-06-10"), kind=TouchpointKind.EMAIL_CLICK)
    TouchpointFactory(customer=buyer, occurred_at=at("2024-06-10"), kind=TouchpointKind.EMAIL_OPEN)  # not engagement
    TouchpointFactory(customer=buyer, occurred_at=at("2024-05-20"), kind=TouchpointKind.CART_ADD)  # > 30 days
    TouchpointFactory(customer=buyer, occurred_at=at("2024-07-01"), kind=TouchpointKind.REVIEW)  # after as_of
    assert value(buyer, "engagements_last_30d") == 2


def test_engagements_since_last_order(buyer, lead):
    TouchpointFactory(customer=buyer, occurred_at=at("2024-03-01", 10), kind=TouchpointKind.PRODUCT_VIEW)  # before
    TouchpointFactory(customer=buyer, occurred_at=at("2024-03-02"), kind=TouchpointKind.PRODUCT_VIEW)
    TouchpointFactory(customer=buyer, occurred_at=at("2024-05-02"), kind=TouchpointKind.APP_PUSH_OPEN)
    TouchpointFactory(customer=buyer, occurred_at=at("2024-05-03"), kind=TouchpointKind.SUPPORT_CONTACT)
    TouchpointFactory(customer=lead, occurred_at=at("2024-06-21"), kind=TouchpointKind.SITE_VISIT)
    assert value(buyer, "engagements_since_last_order") == 2
    assert value(lead, "engagements_since_last_order") is None


def test_referral_count_counts_referred_customers_seen_by_as_of(buyer):
    CustomerFactory(referred_by=buyer, first_seen_at=at("2024-05-01"))
    CustomerFactory(referred_by=buyer, first_seen_at=at("2024-06-30", 18))  # at as_of counts
    CustomerFactory(referred_by=buyer, first_seen_at=at("2024-07-15"))
    assert value(buyer, "referral_count") == 2


def test_last_feedback_score_takes_the_latest_and_breaks_ties_by_arrival(buyer, lead):
    FeedbackFactory(customer=buyer, submitted_at=at("2024-02-01"), score=3)
    FeedbackFactory(customer=buyer, submitted_at=at("2024-05-01"), score=7)
    FeedbackFactory(customer=buyer, submitted_at=at("2024-05-01"), score=10)  # same moment, later row
    FeedbackFactory(customer=buyer, submitted_at=at("2024-07-01"), score=0)  # after as_of
    assert value(buyer, "last_feedback_score") == 10
    assert value(lead, "last_feedback_score") is None


def test_registry_lists_the_spec_features_that_need_only_lifecycle_data():
    assert set(FEATURES) >= {
        "order_count",
        "orders_last_365d",
        "total_spent",
        "avg_order_value",
        "days_since_first_order",
        "days_since_last_order",
        "days_since_first_seen",
        "engagements_last_30d",
        "engagements_since_last_order",
        "referral_count",
        "last_feedback_score",
    }
