"""The platform-neutral shop records and how they are written: statuses, refunds, currency, channels, guests,
acquisition, consent, out-of-order updates and erasure — whatever platform they came from."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import Platform, Source
from lifecycle.sources.records import (
    DEFAULT_CHANNEL_RULES,
    Attribution,
    Consent,
    ShopBatch,
    ShopCustomer,
    ShopOrder,
    guest_customer_id,
    order_channel,
    shop_batch_ingest,
)

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def source() -> Source:
    return Source.objects.create(
        name="Shop",
        platform=Platform.SHOPIFY,
        shop_url="https://shop.example",
        currency="EUR",
        completed_statuses=["PAID", "PARTIALLY_REFUNDED"],
        channel_rules=DEFAULT_CHANNEL_RULES,
    )


def ada(**fields) -> ShopCustomer:
    return ShopCustomer(**{"id": "101", "email": "ada@example.com", "name": "Ada", "created_at": MARCH, **fields})


def an_order(order_id="9001", **fields) -> ShopOrder:
    values = {
        "id": order_id,
        "placed_at": MARCH,
        "currency": "EUR",
        "total": Decimal("80.00"),
        "status": "PAID",
        "customer": ada(),
        "updated_at": MARCH,
    }
    return ShopOrder(**{**values, **fields})


def test_an_order_and_its_customer_are_written_once_however_often_sent(source):
    batch = ShopBatch(customers=[ada()], orders=[an_order()])
    first = shop_batch_ingest(source=source, batch=batch)
    again = shop_batch_ingest(source=source, batch=batch)

    assert (first.customers, first.orders, first.skipped) == (1, 1, [])
    assert (again.customers, again.orders) == (1, 1)
    order = Order.objects.get()
    assert (order.external_id, order.customer.external_id, order.amount, order.status) == (
        "9001",
        "101",
        Decimal("80.00"),
        OrderStatus.COMPLETED,
    )
    assert Customer.objects.get().email == "ada@example.com"
    # A customer that comes with an order is written, not counted as one the shop listed.
    assert shop_batch_ingest(source=source, batch=ShopBatch(orders=[an_order("9002")])).customers == 0


def test_refunds_and_cancellations(source):
    shop_batch_ingest(
        source=source,
        batch=ShopBatch(
            orders=[
                an_order("1", refunded=Decimal("30.00"), status="PARTIALLY_REFUNDED"),
                an_order("2", refunded=Decimal("80.00"), status="REFUNDED"),
                an_order("3", cancelled=True, status="VOIDED"),
            ]
        ),
    )
    orders = {order.external_id: (order.amount, order.status) for order in Order.objects.all()}
    assert orders == {
        "1": (Decimal("50.00"), OrderStatus.COMPLETED),
        "2": (Decimal("80.00"), OrderStatus.REFUNDED),
        "3": (Decimal("80.00"), OrderStatus.CANCELLED),
    }


def test_orders_that_are_no_purchase_or_in_another_currency_are_skipped_and_named(source):
    outcome = shop_batch_ingest(
        source=source,
        batch=ShopBatch(
            orders=[
                an_order("1", status="PENDING"),
                an_order("2", currency="USD"),
                an_order("3", customer=None, email=""),
                an_order("4"),
            ]
        ),
    )
    assert list(Order.objects.values_list("external_id", flat=True)) == ["4"]
    assert outcome.skipped == [
        "order 1: status 'PENDING' is not a completed purchase (status)",
        "order 2: currency USD is not the shop's currency EUR (currency)",
        "order 3: a guest order without an email (email)",
    ]


def test_a_guest_is_one_customer_keyed_by_a_hash_of_the_email(source):
    shop_batch_ingest(
        source=source,
        batch=ShopBatch(
            orders=[
                an_order("1", customer=None, email="Guest@Example.com"),
                an_order("2", customer=None, email="guest@example.com ", placed_at=datetime(2025, 2, 1, tzinfo=UTC)),
            ]
        ),
    )
    guest = Customer.objects.get()
    assert guest.external_id == guest_customer_id("guest@example.com")
    assert "guest" not in guest.external_id.removeprefix("guest-")  # the id does not spell the email
    assert guest.first_seen_at == datetime(2025, 2, 1, tzinfo=UTC)  # the earliest order
    assert guest.orders.count() == 2


@pytest.mark.parametrize(
    ("attribution", "channel"),
    [
        (Attribution(utm_source="newsletter", utm_medium="Email", utm_campaign="spring"), "email"),
        (Attribution(utm_medium="cpc", referrer="https://www.google.com/"), "paid_ads"),
        (Attribution(referrer="https://www.google.de/search?q=cds"), "organic_search"),
        (Attribution(referrer="https://l.instagram.com/"), "organic_social"),
        (Attribution(referrer="https://blog.example.org/best-cds"), "referral"),
        (Attribution(), "direct"),
    ],
)
def test_default_channel_rules(attribution, channel):
    assert order_channel(DEFAULT_CHANNEL_RULES, attribution) == channel


def test_channel_campaign_and_acquisition_come_from_the_first_order(source):
    later = an_order("2", placed_at=datetime(2025, 4, 1, tzinfo=UTC), attribution=Attribution(utm_medium="email"))
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[later]))
    assert Customer.objects.get().acquisition_channel.key == "email"

    # The history import brings an earlier order later: it decides the acquisition channel.
    first = an_order("1", attribution=Attribution(utm_medium="cpc", utm_campaign="launch-2025"))
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[first]))
    customer = Customer.objects.get()
    assert customer.acquisition_channel.key == "paid_ads"
    assert Order.objects.get(external_id="1").campaign_code == "launch-2025"


def test_an_older_update_does_not_roll_an_order_or_a_customer_back(source):
    newer = datetime(2025, 3, 5, tzinfo=UTC)
    refunded = an_order(refunded=Decimal("80.00"), status="REFUNDED", updated_at=newer)
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[refunded]))
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[an_order()]))  # the creation webhook, late
    assert Order.objects.get().status == OrderStatus.REFUNDED

    unsubscribed = ada(updated_at=newer, email_consent=Consent(ConsentState.UNSUBSCRIBED, newer, "preferences"))
    shop_batch_ingest(source=source, batch=ShopBatch(customers=[unsubscribed]))
    late = ada(updated_at=MARCH, email_consent=Consent(ConsentState.SUBSCRIBED, MARCH, "checkout"))
    shop_batch_ingest(source=source, batch=ShopBatch(customers=[late]))
    customer = Customer.objects.get()
    assert (customer.email_consent, customer.email_consent_at, customer.email_consent_source) == (
        ConsentState.UNSUBSCRIBED,
        newer,
        "preferences",
    )


def test_consent_without_a_source_names_the_platform(source):
    consent = Consent(ConsentState.SUBSCRIBED, MARCH)
    shop_batch_ingest(source=source, batch=ShopBatch(customers=[ada(sms_consent=consent)]))
    customer = Customer.objects.get()
    assert (customer.sms_consent, customer.sms_consent_source, customer.email_consent) == (
        ConsentState.SUBSCRIBED,
        "shopify",
        ConsentState.NOT_SUBSCRIBED,
    )


def test_the_id_prefix_keeps_two_shops_apart(source):
    other = Source.objects.create(
        name="Shop AT",
        platform=Platform.SHOPIFY,
        shop_url="https://at.shop.example",
        currency="EUR",
        id_prefix="at-",
        completed_statuses=["PAID"],
    )
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[an_order()]))
    shop_batch_ingest(source=other, batch=ShopBatch(orders=[an_order()]))
    assert sorted(Order.objects.values_list("external_id", "customer__external_id")) == [
        ("9001", "101"),
        ("at-9001", "at-101"),
    ]


def test_a_redacted_customer_is_erased_and_their_orders_stay(source):
    shop_batch_ingest(source=source, batch=ShopBatch(orders=[an_order()]))
    outcome = shop_batch_ingest(source=source, batch=ShopBatch(erased_customer_ids=["101", "unknown"]))
    customer = Customer.objects.get()
    assert outcome.erased == 1
    assert customer.erased_at is not None and customer.email == "" and customer.external_id != "101"
    assert customer.orders.count() == 1


def test_an_item_the_core_refuses_is_skipped_with_its_reason(source):
    outcome = shop_batch_ingest(
        source=source,
        batch=ShopBatch(
            orders=[an_order("1", customer=ada(email="not-an-email")), an_order("2", customer=ada(id="7"))]
        ),
    )
    assert list(Order.objects.values_list("external_id", flat=True)) == ["2"]
    assert outcome.skipped == ["customer 101: Enter a valid email address. (email)"]
