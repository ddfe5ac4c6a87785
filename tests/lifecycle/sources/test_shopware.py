"""Shopware 6 as a source, against a fake Admin API (shopware_fake.py): the history import page by page, the token,
throttling and failures, the sync, and what counts as a purchase."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import ImportState, Platform, Source, SourceStatus
from lifecycle.sources.platforms import PLATFORMS
from lifecycle.sources.records import guest_customer_id
from lifecycle.sources.shopware.client import ShopwareClient, storage_time
from lifecycle.sources.shopware.mapping import order_record
from lifecycle.sources.sync import SYNC_OVERLAP, changes_sync_run, history_import_run
from tests.lifecycle.sources.shopware_fake import (
    ADA,
    ALAN,
    GRACE,
    ORDER_IDS,
    FakeShopware,
    fixture,
    shopware_source,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(httpserver) -> FakeShopware:
    return FakeShopware(httpserver)


@pytest.fixture
def source(httpserver) -> Source:
    return shopware_source(httpserver.url_for("/").rstrip("/"))


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The client of every run: two records a page (the fixtures' pages), waits recorded instead of slept."""
    slept: list[float] = []
    adapter = dataclasses.replace(
        PLATFORMS[Platform.SHOPWARE], client=lambda source: ShopwareClient(source, sleep=slept.append, page_size=2)
    )
    monkeypatch.setitem(PLATFORMS, Platform.SHOPWARE, adapter)
    return slept


def orders_by_id() -> dict[str, Order]:
    return {order.external_id: order for order in Order.objects.select_related("customer", "channel")}


# --- the history import -------------------------------------------------------------------------------------------


def test_the_history_import_brings_every_customer_and_order_with_consent_and_attribution(shop, source, sleeps):
    assert history_import_run(source_id=source.pk) == ImportState.DONE

    guest = guest_customer_id("guest@example.com")
    customers = {customer.external_id: customer for customer in Customer.objects.all()}
    assert set(customers) == {ADA, GRACE, ALAN, guest}
    assert customers[ADA].name == "Ada Lovelace"
    assert customers[ADA].first_seen_at == datetime(2024, 1, 10, 9, tzinfo=UTC)
    assert (customers[ADA].email_consent, customers[ADA].email_consent_at, customers[ADA].email_consent_source) == (
        ConsentState.SUBSCRIBED,
        datetime(2024, 1, 11, 8, tzinfo=UTC),
        "shopware newsletter",
    )
    assert customers[GRACE].email_consent == ConsentState.UNSUBSCRIBED
    assert customers[GRACE].email_consent_at == datetime(2024, 5, 5, 17, 20, tzinfo=UTC)
    assert customers[ALAN].email_consent == ConsentState.NOT_SUBSCRIBED

    orders = orders_by_id()
    assert set(orders) == set(ORDER_IDS[:5])  # 10006: order and payment open, no purchase yet
    expected = {
        ORDER_IDS[0]: (ADA, OrderStatus.COMPLETED, Decimal("119.99")),
        ORDER_IDS[1]: (GRACE, OrderStatus.COMPLETED, Decimal("50.00")),  # 80.00 less the completed refund of 30.00
        ORDER_IDS[2]: (guest, OrderStatus.COMPLETED, Decimal("45.50")),  # completed by the shop, payment open
        ORDER_IDS[3]: (ADA, OrderStatus.CANCELLED, Decimal("60.00")),
        ORDER_IDS[4]: (ALAN, OrderStatus.REFUNDED, Decimal("25.00")),
    }
    assert {key: (o.customer.external_id, o.status, o.amount) for key, o in orders.items()} == expected
    # affiliateCode partner-x → utm_source partner-x, utm_medium affiliate (default rule: referral); campaignCode.
    assert (orders[ORDER_IDS[0]].channel.key, orders[ORDER_IDS[0]].campaign_code) == ("referral", "spring24")
    assert Customer.objects.get(external_id=ADA).acquisition_channel.key == "referral"  # her first order's

    source.refresh_from_db()
    assert (source.orders_imported, source.items_skipped, source.import_total) == (5, 1, 9)
    assert source.import_checkpoint == {}
    assert sleeps == []


def test_the_import_asks_shopware_for_stable_pages_with_what_the_mapping_reads(shop, source, sleeps):
    history_import_run(source_id=source.pk)

    first_customers = shop.asked("/api/search/customer")[0]
    assert first_customers["total-count-mode"] == 1
    assert first_customers["sort"] == [{"field": "createdAt", "order": "ASC"}, {"field": "id", "order": "ASC"}]
    assert {"type": "equals", "field": "guest", "value": False} in first_customers["filter"]
    orders = shop.asked("/api/search/order")
    assert [criteria["page"] for criteria in orders] == [1, 2, 3, 4]
    assert orders[1]["total-count-mode"] == 0
    assert set(orders[0]["associations"]) == {"currency", "stateMachineState", "orderCustomer", "transactions"}
    assert len(shop.tokens) == 1  # one token serves the whole import


def test_a_429_is_waited_out_as_retry_after_says_and_the_import_completes(shop, source, sleeps):
    shop.throttled[("order", 2)] = 1

    assert history_import_run(source_id=source.pk) == ImportState.DONE
    assert sleeps == [7.0]
    assert Order.objects.count() == 5


def test_an_import_failing_midway_keeps_its_pages_and_resumes_without_duplicates(shop, source, sleeps):
    shop.failing = ("order", 3)

    assert history_import_run(source_id=source.pk) == ImportState.FAILED
    source.refresh_from_db()
    assert source.status == SourceStatus.FAILING
    assert source.import_checkpoint == {"entity": "order", "page": 3}
    assert set(orders_by_id()) == set(ORDER_IDS[:4])
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]  # ShopHttp's backoff between its six attempts

    shop.failing, shop.requests = None, []
    assert history_import_run(source_id=source.pk) == ImportState.DONE
    assert [criteria["page"] for criteria in shop.asked("/api/search/order")] == [3, 4]
    assert shop.asked("/api/search/customer") == []
    assert set(orders_by_id()) == set(ORDER_IDS[:5])
    assert Customer.objects.count() == 4


def test_credentials_shopware_refuses_reject_the_source_without_retrying(shop, source, sleeps):
    source.credentials = {"client_id": "SWIAQ0XLVUNOWUJSTGTPQZHHCQ", "client_secret": "wrong"}
    source.save()

    assert history_import_run(source_id=source.pk) == ImportState.FAILED
    source.refresh_from_db()
    assert source.status == SourceStatus.REJECTED
    assert [path for path, _ in shop.requests] == ["/api/oauth/token"]
    assert sleeps == []


def test_a_token_the_shop_dropped_is_renewed_once(shop, source, sleeps):
    client = ShopwareClient(source, sleep=sleeps.append, page_size=2)
    client.history_page({})
    shop.revoked.add(shop.tokens[0])

    page = client.history_page({"entity": "customer", "page": 2})
    assert [customer.id for customer in page.batch.customers] == [ALAN]
    assert len(shop.tokens) == 2


def test_a_401_with_a_fresh_token_means_the_credentials_are_refused(shop, source, sleeps):
    shop.searches_refused = True  # e.g. the integration was deleted: tokens are issued, searches refused

    assert history_import_run(source_id=source.pk) == ImportState.FAILED
    source.refresh_from_db()
    assert source.status == SourceStatus.REJECTED
    assert len(shop.tokens) == 1
    assert len(shop.asked("/api/search/customer")) == 1


def test_a_token_is_renewed_before_it_runs_out(shop, source, sleeps):
    shop.expires_in = 20  # shorter than the margin: every request gets a fresh one

    history_import_run(source_id=source.pk)
    searches = [path for path, _ in shop.requests if path != "/api/oauth/token"]
    assert len(shop.tokens) == len(searches)
    assert not shop.revoked


def test_the_connection_check_reads_each_entity_once(shop, source, sleeps):
    ShopwareClient(source, sleep=sleeps.append).connection_check()
    assert [path for path, _ in shop.requests] == [
        "/api/oauth/token",
        "/api/search/customer",
        "/api/search/order",
        "/api/search/newsletter-recipient",
    ]


# --- the sync -----------------------------------------------------------------------------------------------------


def test_a_sync_asks_for_what_changed_since_the_last_one_including_payments_and_consent(shop, source, sleeps):
    history_import_run(source_id=source.pk)
    synced_until = datetime(2024, 11, 4, 8, 30, tzinfo=UTC)
    Source.objects.filter(pk=source.pk).update(synced_until=synced_until)
    refunded = fixture("orders_page1.json")["data"][0]
    refunded["transactions"][0]["stateMachineState"]["technicalName"] = "refunded"
    refunded["transactions"][0]["updatedAt"] = "2024-11-04T09:00:00.000+00:00"
    grace_now = {**fixture("newsletter_recipients.json")["data"][1], "status": "optIn"}
    grace_now.update(confirmedAt="2024-11-04T09:10:00.000+00:00", updatedAt="2024-11-04T09:10:00.000+00:00")
    shop.recipients = [fixture("newsletter_recipients.json")["data"][0], grace_now]
    shop.changes = {"order": [refunded], "newsletter-recipient": [grace_now]}
    shop.requests = []

    assert changes_sync_run(source_id=source.pk, now=synced_until + timedelta(hours=1))

    since = storage_time(synced_until - SYNC_OVERLAP)
    assert since == "2024-11-04 08:25:00.000"
    order_filter = shop.asked("/api/search/order")[0]["filter"][0]
    assert order_filter["operator"] == "or"
    assert [(q["field"], q["parameters"]) for q in order_filter["queries"]] == [
        ("createdAt", {"gte": since}),
        ("updatedAt", {"gte": since}),
        ("transactions.updatedAt", {"gte": since}),
    ]
    assert Order.objects.get(external_id=ORDER_IDS[0]).status == OrderStatus.REFUNDED
    grace = Customer.objects.get(external_id=GRACE)
    assert (grace.email_consent, grace.email_consent_at) == (
        ConsentState.SUBSCRIBED,
        datetime(2024, 11, 4, 9, 10, tzinfo=UTC),
    )


# --- what counts as a purchase ------------------------------------------------------------------------------------


def test_the_guest_accounts_shopware_makes_per_order_are_one_customer_by_email():
    order = fixture("orders_page2.json")["data"][0]
    again = {**order, "id": "ffff", "orderCustomer": {**order["orderCustomer"], "customerId": "another-account"}}
    first, second = order_record(order), order_record(again)
    assert first.customer is None and second.customer is None
    assert first.email == second.email == "guest@example.com"


@pytest.mark.parametrize(
    ("order_state", "payment", "status"),
    [
        ("open", "paid", "paid"),
        ("completed", "paid", "paid"),
        ("completed", "open", "completed"),
        ("completed", "authorized", "completed"),
        ("completed", "failed", "failed"),  # and withdrawn: cancelled
        ("in_progress", "open", "open"),
    ],
)
def test_the_status_is_the_payment_unless_the_shop_completed_an_unpaid_order(order_state, payment, status):
    order = fixture("orders_page1.json")["data"][0]
    order["stateMachineState"]["technicalName"] = order_state
    order["transactions"][0]["stateMachineState"]["technicalName"] = payment
    assert order_record(order).status == status
