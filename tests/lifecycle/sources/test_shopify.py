"""Shopify's history import and syncs against a local fake of the Admin GraphQL API (fake_shopify.py): bulk
operations read in byte ranges, the cursor-page fallback, cost-based throttling, 429s, rejected credentials, a
failure in the middle of an import and its resumption, the updated_at sync."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from werkzeug import Response

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import ImportState, Source, SourceStatus
from lifecycle.sources.records import guest_customer_id
from lifecycle.sources.services import source_connection_check
from lifecycle.sources.shopify import bulk, client
from lifecycle.sources.sync import changes_sync_run, history_import_run
from tests.lifecycle.sources.fake_shopify import (
    FakeShopify,
    a_customer,
    an_order,
    fixture,
    json_response,
    shopify_source,
)

pytestmark = pytest.mark.django_db

TOKEN = "shpat_0123456789abcdef"
VISIT_EMAIL = {
    "lastVisit": {
        "landingPage": "https://clm-test.myshopify.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
        "referrerUrl": None,
        "utmParameters": {"source": "newsletter", "medium": "email", "campaign": "spring"},
    }
}


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The client's sleeps (throttle, polling, retries), recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(client, "pause", recorded.append)
    return recorded


@pytest.fixture
def shop(httpserver) -> FakeShopify:
    return FakeShopify(httpserver)


@pytest.fixture
def source(httpserver) -> Source:
    return shopify_source(httpserver, token=TOKEN, secret="hush")


@pytest.fixture
def history(shop) -> FakeShopify:
    """Three customers and their orders: paid, partly and fully refunded, a guest's, a cancelled one, a pending one."""
    ada = a_customer(1, "ada@example.com")
    bob = a_customer(2, "bob@example.com", emailMarketingConsent=None, smsMarketingConsent=None)
    cleo = a_customer(3, "cleo@example.com")
    shop.customers = [ada, bob, cleo]
    shop.orders = [
        an_order(11, ada, processedAt="2025-01-06T10:00:00Z"),
        an_order(12, bob, total="50.0", refunded="20.0", displayFinancialStatus="PARTIALLY_REFUNDED",
                 customerJourneySummary=VISIT_EMAIL),
        an_order(13, cleo, total="30.0", refunded="30.0", displayFinancialStatus="REFUNDED"),
        an_order(14, None, email="gus@example.com", customerJourneySummary=None),
        an_order(15, ada, processedAt="2025-02-01T10:00:00Z", cancelledAt="2025-02-02T10:00:00Z"),
        an_order(16, ada, displayFinancialStatus="PENDING"),
    ]  # fmt: skip
    return shop


def orders_by_id() -> dict[str, tuple[Decimal, str]]:
    return {order.external_id: (order.amount, order.status) for order in Order.objects.all()}


def assert_history_written() -> None:
    assert set(Customer.objects.values_list("external_id", flat=True)) == {
        "1",
        "2",
        "3",
        guest_customer_id("gus@example.com"),
    }
    assert orders_by_id() == {
        "11": (Decimal("80.00"), OrderStatus.COMPLETED),
        "12": (Decimal("30.00"), OrderStatus.COMPLETED),  # 50 less the 20 refunded
        "13": (Decimal("30.00"), OrderStatus.REFUNDED),
        "14": (Decimal("80.00"), OrderStatus.COMPLETED),
        "15": (Decimal("80.00"), OrderStatus.CANCELLED),
    }  # 16 is pending: no purchase yet
    ada = Customer.objects.get(external_id="1")
    assert (ada.email, ada.name) == ("ada@example.com", "Ada Lovelace")
    assert (ada.email_consent, ada.email_consent_at, ada.email_consent_source) == (
        ConsentState.SUBSCRIBED,
        datetime(2025, 1, 5, 10, tzinfo=UTC),
        "shopify confirmed_opt_in",
    )
    assert ada.sms_consent == ConsentState.NOT_SUBSCRIBED
    assert ada.acquisition_channel.key == "paid_ads"  # her first order came from utm_medium=cpc
    first = Order.objects.get(external_id="11")
    assert (first.channel.key, first.campaign_code) == ("paid_ads", "winter")
    assert Order.objects.get(external_id="12").channel.key == "email"


@pytest.mark.parametrize("ignore_range", [False, True], ids=["range-requests", "whole-file"])
def test_history_import_reads_bulk_operations_range_by_range(source, history, waits, monkeypatch, ignore_range):
    monkeypatch.setattr(bulk, "RANGE_BYTES", 1500)  # two or three records a page
    history.ignore_range = ignore_range

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert_history_written()
    source.refresh_from_db()
    assert (source.import_state, source.import_checkpoint, source.orders_imported) == (ImportState.DONE, {}, 5)
    assert len(history.queries("bulkOperationRunQuery")) == 2  # customers, then orders
    assert client.POLL_SECONDS in waits  # each operation was still running when first asked
    assert len([r for r in history.file_requests if r["kind"] == "orders"]) >= 3  # several pages
    # The token goes to the Admin API only, never to the storage the results are downloaded from.
    assert all(request["headers"]["X-Shopify-Access-Token"] == TOKEN for request in history.requests)
    assert not any("X-Shopify-Access-Token" in headers for headers in history.file_requests)


@pytest.mark.parametrize("bulk_end", ["refused", "FAILED"])
def test_a_kind_whose_bulk_operation_is_refused_or_fails_is_read_in_cursor_pages(
    source, history, waits, monkeypatch, bulk_end
):
    monkeypatch.setattr(client, "PAGE_SIZE", 2)
    history.bulk = bulk_end

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert_history_written()
    order_pages = history.queries("orders(first")
    assert [page["variables"]["after"] for page in order_pages] == [None, "cursor-2", "cursor-4"]
    assert {page["variables"]["first"] for page in order_pages} == {2}


def test_an_import_that_fails_midway_resumes_from_its_checkpoint_without_duplicates(
    source, history, waits, monkeypatch
):
    line = max(len(json.dumps(order)) + 1 for order in history.orders)
    monkeypatch.setattr(bulk, "RANGE_BYTES", 2 * line)  # two orders a page
    history.failing_file = ("orders", 3)  # the third page of orders answers 500, again and again

    assert history_import_run(source_id=source.pk) == ImportState.FAILED

    source.refresh_from_db()
    assert source.status == SourceStatus.FAILING
    assert Customer.objects.filter(external_id__in=["1", "2", "3"]).count() == 3
    assert Order.objects.count() == 4  # pages 1 and 2 of the orders
    checkpoint = source.import_checkpoint
    assert (checkpoint["kind"], checkpoint["operation"], checkpoint["line"]) == (
        "orders",
        "gid://shopify/BulkOperation/2",
        4,
    )

    history.failing_file = None
    history.file_requests.clear()
    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert history.file_requests[0]["Range"].startswith(f"bytes={checkpoint['offset']}-")  # page 3, not page 1
    assert len(history.queries("bulkOperationRunQuery")) == 2  # the orders' operation was not started again
    assert_history_written()
    source.refresh_from_db()
    assert source.orders_imported == 5  # every order counted once


def test_an_expired_bulk_result_is_asked_for_again(source, history, waits):
    history.expire_first = True

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert len(history.queries("bulkOperationRunQuery")) == 3  # customers twice, orders once
    assert_history_written()


def test_the_client_waits_for_the_cost_bucket_before_it_runs_dry(source, history, waits, monkeypatch):
    monkeypatch.setattr(client, "PAGE_SIZE", 2)
    history.bulk = "refused"
    # After each page: this query asked for 302 points, 100 are left, 100 come back each second.
    history.cost = {
        "requestedQueryCost": 302,
        "actualQueryCost": 98,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 100, "restoreRate": 100.0},
    }

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    # (302 - 100) / 100 seconds before each query whose cost is known from its last time: the customers' page 2,
    # the orders' pages 2 and 3, the second bulkOperationRunQuery.
    assert waits == [pytest.approx(2.02)] * 4
    assert_history_written()


def test_a_throttled_answer_is_waited_out_and_asked_again(source, history, waits):
    history.answers = [json_response(fixture("graphql_throttled.json"))]

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert waits[0] == pytest.approx((752 - 666) / 50.0)  # what the answer said was missing, at 50 points a second
    assert history.requests[0]["query"] == history.requests[1]["query"]
    assert_history_written()


def test_a_429_with_retry_after_is_waited_out(source, history, waits):
    history.answers = [
        Response("Exceeded 2 calls per second for api client.", status=429, headers={"Retry-After": "2"})
    ]

    assert history_import_run(source_id=source.pk) == ImportState.DONE

    assert waits[0] == 2.0
    assert_history_written()


@pytest.mark.parametrize(
    "answer",
    [
        json_response({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401),
        json_response(fixture("graphql_access_denied.json")),
    ],
    ids=["invalid-token", "scope-missing"],
)
def test_rejected_credentials_stop_the_import_without_retries(source, history, waits, answer):
    history.answers = [answer]

    assert history_import_run(source_id=source.pk) == ImportState.FAILED

    source.refresh_from_db()
    assert source.status == SourceStatus.REJECTED
    assert len(history.requests) == 1 and waits == []
    assert not Customer.objects.exists()


def test_the_connection_check_says_when_the_shop_keeps_another_currency(source, shop):
    assert source_connection_check(source=source).status == SourceStatus.CONNECTED

    shop.currency = "USD"
    checked = source_connection_check(source=source)

    assert checked.status == SourceStatus.FAILING
    assert "The shop's currency is USD" in checked.status_message


def test_the_sync_asks_for_what_changed_since_the_last_one(source, shop, waits, monkeypatch):
    monkeypatch.setattr(client, "PAGE_SIZE", 1)
    Source.objects.filter(pk=source.pk).update(
        import_state=ImportState.DONE, synced_until=datetime(2025, 2, 1, tzinfo=UTC)
    )
    ada = a_customer(1, "ada@example.com", updated="2025-01-05T10:00:00Z")
    bob = a_customer(2, "bob@example.com", updated="2025-02-10T10:00:00Z")
    shop.customers = [ada, bob]
    shop.orders = [
        an_order(11, ada, updatedAt="2025-01-06T10:00:00Z"),
        an_order(12, bob, updatedAt="2025-02-10T10:05:00Z"),
        an_order(13, bob, updatedAt="2025-02-11T10:05:00Z"),
    ]

    assert changes_sync_run(source_id=source.pk, now=datetime(2025, 2, 12, tzinfo=UTC))

    # The last sync's end, less five minutes for changes written while it ran.
    assert {request["variables"]["query"] for request in shop.queries("(first")} == {
        "updated_at:>'2025-01-31T23:55:00Z'"
    }
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"2"}
    assert set(Order.objects.values_list("external_id", flat=True)) == {"12", "13"}
    source.refresh_from_db()
    assert source.synced_until == datetime(2025, 2, 12, tzinfo=UTC)


def test_a_dev_dashboard_app_connects_with_its_client_id_and_secret(source, shop, httpserver):
    """The client credentials grant (https://shopify.dev/docs/apps/build/dev-dashboard/get-api-access-tokens):
    POST /admin/oauth/access_token with the app's id and secret as a form answers the token, valid 24 hours."""
    grants = []

    def token(request):
        grants.append(dict(request.form))
        if request.form.get("client_secret") != "shpss_right":
            # The OAuth error answer (RFC 6749 §5.2) the grant's page refers to.
            return Response(json.dumps({"error": "invalid_client"}), status=400, content_type="application/json")
        body = {"access_token": "shpat_granted", "scope": "read_customers,read_orders", "expires_in": 86399}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/admin/oauth/access_token", method="POST").respond_with_handler(token)
    Source.objects.filter(pk=source.pk).update(credentials={"client_id": "app-id", "client_secret": "shpss_right"})
    source.refresh_from_db()

    assert source_connection_check(source=source).status == SourceStatus.CONNECTED
    assert grants == [{"grant_type": "client_credentials", "client_id": "app-id", "client_secret": "shpss_right"}]
    assert shop.requests[-1]["headers"]["X-Shopify-Access-Token"] == "shpat_granted"

    Source.objects.filter(pk=source.pk).update(credentials={"client_id": "app-id", "client_secret": "shpss_wrong"})
    source.refresh_from_db()
    refused = source_connection_check(source=source)
    assert refused.status == SourceStatus.REJECTED
    assert len(grants) == 2  # refused at once, not retried
