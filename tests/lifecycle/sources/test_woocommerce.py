"""WooCommerce as a source: the history import and the sync against a fake shop answering as the REST API v3
documentation shows (fixtures/woocommerce/README.md cites each payload), and the webhook endpoint with WooCommerce's
headers, signature and ping."""

import base64
import hashlib
import hmac
import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from werkzeug.wrappers import Request, Response

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import ImportState, Platform, Source, SourceDelivery, SourceStatus
from lifecycle.sources.platforms import PLATFORMS
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES, guest_customer_id
from lifecycle.sources.sync import changes_sync_run, delivery_process, history_import_run
from lifecycle.sources.woocommerce import WooClient, signature_valid, webhook_delivery

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "woocommerce"
KEY, SECRET = "ck_0123456789abcdef", "cs_fedcba9876543210"
WEBHOOK_SECRET = "clm-test-secret"
NOW = datetime(2017, 4, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())


def shop_orders() -> list[dict]:
    return fixture("orders.json") + fixture("orders_more.json")


def gmt(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class FakeWoo:
    """The customers and orders endpoints: page/per_page, X-WP-Total(Pages), the documented sort orders, Basic auth
    with the REST API keys; `fail` answers 500 for one (resource, page), `throttled` 429s come first."""

    def __init__(self) -> None:
        self.data = {"customers": fixture("customers.json"), "orders": shop_orders()}
        self.fail: tuple[str, int] | None = None
        self.throttled = 0

    def __call__(self, request: Request) -> Response:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (KEY, SECRET):
            error = {"code": "woocommerce_rest_authentication_error", "message": "Consumer key is invalid."}
            return self.json({**error, "data": {"status": 401}}, status=401)
        if self.throttled:
            self.throttled -= 1
            return Response("Too Many Requests", status=429, headers={"Retry-After": "7"})
        resource = request.path.rstrip("/").rsplit("/", 1)[-1]
        page, per_page = int(request.args.get("page", 1)), int(request.args.get("per_page", 10))
        if self.fail == (resource, page):
            return self.json({"code": "internal_server_error", "message": "Error", "data": {"status": 500}}, 500)
        items = self.select(resource, request.args)
        pages = math.ceil(len(items) / per_page)
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)}
        return self.json(items[(page - 1) * per_page : page * per_page], headers=headers)

    def select(self, resource: str, args) -> list[dict]:
        items = list(self.data[resource])
        if "modified_after" in args:
            assert args["dates_are_gmt"] == "true"
            items = [item for item in items if gmt(item["date_modified_gmt"]) > gmt(args["modified_after"])]
        if args.get("orderby") == "registered_date":
            return sorted(items, key=lambda item: item["date_created_gmt"], reverse=args.get("order") == "desc")
        return sorted(items, key=lambda item: item["id"], reverse=args.get("order") == "desc")

    @staticmethod
    def json(body, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


@pytest.fixture
def shop(httpserver) -> FakeWoo:
    fake = FakeWoo()
    httpserver.expect_request("/wp-json/wc/v3/customers").respond_with_handler(fake)
    httpserver.expect_request("/wp-json/wc/v3/orders").respond_with_handler(fake)
    return fake


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The client of every run: two records a page (so the fixtures make several pages), waits recorded, not slept."""
    waits: list[float] = []
    adapter = PLATFORMS[Platform.WOOCOMMERCE]

    def client(source: Source) -> WooClient:
        return WooClient(source, sleep=waits.append, per_page=2)

    monkeypatch.setitem(PLATFORMS, Platform.WOOCOMMERCE, replace(adapter, client=client))
    return waits


@pytest.fixture
def source(httpserver) -> Source:
    return Source.objects.create(
        name="Woo shop",
        platform=Platform.WOOCOMMERCE,
        shop_url=httpserver.url_for("/"),
        currency="USD",
        credentials={"consumer_key": KEY, "consumer_secret": SECRET},
        webhook_secret=WEBHOOK_SECRET,
        completed_statuses=list(PLATFORMS[Platform.WOOCOMMERCE].default_completed_statuses),
        channel_rules=DEFAULT_CHANNEL_RULES,
    )


def api_requests(httpserver) -> list[tuple[str, dict]]:
    return [(request.path.rsplit("/", 1)[-1], dict(request.args)) for request, _ in httpserver.log]


def history_import(source: Source) -> str:
    with time_machine.travel(NOW, tick=False):
        return history_import_run(source_id=source.pk)


def orders_by_id() -> dict[str, Order]:
    return {order.external_id: order for order in Order.objects.select_related("customer", "channel")}


# --- history import ---


def test_history_import_brings_in_every_customer_and_order_of_the_shop(shop, slept, source, httpserver):
    assert history_import(source) == ImportState.DONE

    john_guest = guest_customer_id("john.doe@example.com")
    mary_guest = guest_customer_id("mary.major@example.com")
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"25", "26", john_guest, mary_guest}
    joao = Customer.objects.get(external_id="26")
    assert (joao.email, joao.name, joao.first_seen_at) == (
        "joao.silva@example.com",
        "João Silva",
        gmt("2017-03-21T19:11:14"),
    )
    orders = orders_by_id()
    assert set(orders) == {"723", "727", "728", "729", "731"}  # 732 is pending: no purchase yet
    summary = {key: (order.customer.external_id, order.status, order.amount) for key, order in orders.items()}
    assert summary == {
        "723": ("26", OrderStatus.COMPLETED, Decimal("20.00")),  # 39.00 with refunds of 10.00 and 9.00
        "727": (john_guest, OrderStatus.COMPLETED, Decimal("29.35")),  # processing: paid
        "728": (mary_guest, OrderStatus.CANCELLED, Decimal("45.00")),
        "729": ("25", OrderStatus.COMPLETED, Decimal("60.00")),
        "731": ("26", OrderStatus.REFUNDED, Decimal("15.00")),
    }
    assert orders["723"].placed_at == gmt("2017-03-21T19:16:00")
    source.refresh_from_db()
    assert (source.status, source.import_checkpoint, source.synced_until) == (SourceStatus.CONNECTED, {}, NOW)
    assert (source.import_total, source.orders_imported) == (8, 5)  # X-WP-Total: 2 customers and 6 orders
    assert "732" in source.status_message
    calls = api_requests(httpserver)
    # The totals, then the customers' one page and the orders' three, by ascending id, with CLM's fields only.
    assert [(name, args.get("page")) for name, args in calls] == [
        ("customers", None),
        ("orders", None),
        ("customers", "1"),
        ("orders", "1"),
        ("orders", "2"),
        ("orders", "3"),
    ]
    assert all((args.get("orderby"), args.get("order")) == ("id", "asc") for _, args in calls[2:])
    assert "meta_data" in calls[-1][1]["_fields"] and "line_items" not in calls[-1][1]["_fields"]
    assert slept == []


def test_the_first_order_decides_the_acquisition_channel_and_the_campaign_code(shop, slept, source):
    history_import(source)

    orders = orders_by_id()
    assert (orders["729"].channel.key, orders["729"].campaign_code) == ("email", "spring-sale")
    assert (orders["728"].channel.key, orders["728"].campaign_code) == ("organic_search", "")
    assert orders["723"].channel.key == "direct"  # no attribution recorded: no referrer
    assert Customer.objects.get(external_id="25").acquisition_channel.key == "email"
    mary = Customer.objects.get(external_id=guest_customer_id("mary.major@example.com"))
    assert mary.acquisition_channel.key == "organic_search"


def test_woocommerce_keeps_no_marketing_consent_so_none_is_recorded(shop, slept, source):
    history_import(source)

    joao = Customer.objects.get(external_id="26")
    assert (joao.email_consent, joao.email_consent_at, joao.email_consent_source) == (
        ConsentState.NOT_SUBSCRIBED,
        None,
        "",
    )
    assert joao.sms_consent == ConsentState.NOT_SUBSCRIBED


def test_a_429_is_waited_out_as_retry_after_says_and_the_import_completes(shop, slept, source):
    shop.throttled = 2

    assert history_import(source) == ImportState.DONE

    assert slept == [7.0, 7.0]
    assert Order.objects.count() == 5


def test_an_import_stopped_by_a_failing_page_resumes_there_and_writes_nothing_twice(shop, slept, source, httpserver):
    shop.fail = ("orders", 3)

    assert history_import(source) == ImportState.FAILED

    source.refresh_from_db()
    assert (source.import_state, source.status) == (ImportState.FAILED, SourceStatus.FAILING)
    assert source.import_checkpoint == {"resource": "orders", "page": 3, "total": 8}
    assert set(orders_by_id()) == {"723", "727", "728", "729"}  # pages 1 and 2
    assert len(slept) == 5  # page 3 was tried six times with backoff between, then the run gave up

    shop.fail = None
    httpserver.clear_log()
    assert history_import(source) == ImportState.DONE

    assert [(name, args.get("page")) for name, args in api_requests(httpserver)] == [("orders", "3")]
    assert set(orders_by_id()) == {"723", "727", "728", "729", "731"}
    assert Customer.objects.count() == 4
    source.refresh_from_db()
    assert (source.orders_imported, source.import_checkpoint) == (5, {})


def test_rejected_credentials_mark_the_source_rejected_without_retrying(shop, slept, source, httpserver):
    source.credentials = {"consumer_key": KEY, "consumer_secret": "cs_wrong"}
    source.save()

    assert history_import(source) == ImportState.FAILED

    source.refresh_from_db()
    assert source.status == SourceStatus.REJECTED
    assert "401" in source.status_message
    assert (len(httpserver.log), slept) == (1, [])
    assert not Customer.objects.exists()


def test_the_connection_check_reads_customers_and_orders(shop, slept, source, httpserver):
    PLATFORMS[Platform.WOOCOMMERCE].client(source).connection_check()

    assert [name for name, _ in api_requests(httpserver)] == ["customers", "orders"]
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


def test_the_sync_asks_for_orders_modified_since_and_customers_registered_since(shop, slept, source, httpserver):
    source.import_state, source.synced_until = ImportState.DONE, gmt("2017-03-23T13:00:00")
    source.save()
    shop.data["customers"].append(
        {**shop.data["customers"][0], "id": 27, "email": "new@example.com", "date_created_gmt": "2017-03-30T08:00:00"}
    )

    assert changes_sync_run(source_id=source.pk, now=NOW)

    calls = api_requests(httpserver)
    assert calls[0] == ("customers", {**calls[0][1], "orderby": "registered_date", "order": "desc", "page": "1"})
    order_calls = [args for name, args in calls if name == "orders"]
    assert order_calls[0]["modified_after"] == "2017-03-23T12:55:00"  # synced_until less the overlap, UTC
    assert order_calls[0]["dates_are_gmt"] == "true"
    # The new customer 27 (26 and 25 registered before) and the customers of the orders modified since: 728
    # (Mary, a guest), 729 (25), 731 (26) and 732 (pending, Mary).
    mary = guest_customer_id("mary.major@example.com")
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"27", "25", "26", mary}
    assert set(orders_by_id()) == {"728", "729", "731"}
    source.refresh_from_db()
    assert (source.synced_until, source.status) == (NOW, SourceStatus.CONNECTED)


# --- webhooks ---


def wp_json(payload: dict) -> bytes:
    """A payload as wp_json_encode() writes it: compact, slashes escaped, non-ASCII as \\uXXXX."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def deliver(client, source: Source, topic: str, body: bytes, *, signature: str | None = None, delivery_id="a1b2"):
    """A delivery with the headers WC_Webhook::deliver sets."""
    resource, event = topic.split(".")
    headers = {
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(body) if signature is None else signature,
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }
    url = reverse("source-webhook", args=[source.webhook_token])
    return client.post(url, data=body, content_type="application/json", headers=headers)


def process_deliveries() -> list[str]:
    pending = SourceDelivery.objects.filter(state="pending").order_by("pk").values_list("pk", flat=True)
    return [delivery_process(delivery_id=pk) for pk in pending]


def order_payload(order_id: int, **fields) -> dict:
    order = next(order for order in shop_orders() if order["id"] == order_id)
    return {**order, **fields}


def test_the_signature_matches_one_computed_independently_with_openssl():
    body = (FIXTURES / "webhook_order_729.body").read_bytes()
    headers = {"X-WC-Webhook-Signature": "0XElldUYVZi8fEDhAkwY2wflrTjA8klIwR2TgjeLL44="}

    assert signature_valid(body, headers, WEBHOOK_SECRET)
    assert not signature_valid(body + b" ", headers, WEBHOOK_SECRET)
    assert not signature_valid(body, headers, "another-secret")
    assert not signature_valid(body, {"X-WC-Webhook-Signature": "ümlaut"}, WEBHOOK_SECRET)


def test_a_signed_order_webhook_is_stored_then_written_with_its_customer(client, source):
    body = (FIXTURES / "webhook_order_729.body").read_bytes()

    response = deliver(client, source, "order.created", body)

    assert response.status_code == 200, response.content
    delivery = SourceDelivery.objects.get()
    assert (delivery.topic, delivery.payload["id"]) == ("order.created", 729)
    assert not Order.objects.exists()  # a worker writes it
    assert process_deliveries() == ["processed"]
    order = Order.objects.get()  # customer 25 was not known yet: created with the order
    assert (order.external_id, order.customer.external_id, order.amount) == ("729", "25", Decimal("60.00"))
    assert (order.customer.email, order.channel.key, order.campaign_code) == (
        "john.doe@example.com",
        "email",
        "spring-sale",
    )


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSBzaWduYXR1cmU=", sign(b"another body")])
def test_a_webhook_with_a_missing_or_forged_signature_is_refused_and_nothing_stored(client, source, signature):
    response = deliver(client, source, "order.created", wp_json(order_payload(729)), signature=signature)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert not SourceDelivery.objects.exists()


def test_the_ping_woocommerce_sends_when_a_webhook_is_saved_is_answered_200_and_stores_nothing(client, source):
    url = reverse("source-webhook", args=[source.webhook_token])
    headers = {"User-Agent": "WooCommerce/8.5.0 Hookshot (WordPress/6.4.3)"}

    response = client.post(url, data="webhook_id=12", content_type="application/x-www-form-urlencoded", headers=headers)

    assert response.status_code == 200
    assert not SourceDelivery.objects.exists()


def test_a_replayed_delivery_is_answered_200_and_written_once(client, source):
    body = wp_json(order_payload(729))

    first, again = deliver(client, source, "order.created", body), deliver(client, source, "order.created", body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["detail"] == "Already received."
    assert SourceDelivery.objects.count() == 1
    process_deliveries()
    assert Order.objects.count() == 1


def test_two_orders_delivered_in_the_same_second_are_both_kept_though_woocommerce_gives_them_one_id(client, source):
    # X-WC-Webhook-Delivery-ID is wp_hash(webhook id . current second): a bulk edit sends the same one twice.
    for order_id in (728, 729):
        response = deliver(client, source, "order.updated", wp_json(order_payload(order_id)), delivery_id="same")
        assert response.status_code == 200

    process_deliveries()
    assert set(orders_by_id()) == {"728", "729"}


def test_a_body_that_is_not_json_is_refused(client, source):
    response = deliver(client, source, "order.created", b"webhook_id=12&not=json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not SourceDelivery.objects.exists()


def test_an_unknown_topic_is_refused(client, source):
    response = deliver(client, source, "product.updated", wp_json({"id": 34, "name": "Woo Ninja"}))

    assert response.status_code == 400
    assert "product.updated" in response.json()["detail"]
    assert not SourceDelivery.objects.exists()


def test_an_older_update_arriving_after_a_newer_one_does_not_roll_the_order_back(client, source):
    newer = order_payload(729, status="refunded", date_modified_gmt="2017-03-28T10:00:00")
    newer["refunds"] = [{"id": 740, "reason": "", "total": "-60.00"}]
    older = order_payload(729, status="processing", date_modified_gmt="2017-03-24T12:00:05")

    deliver(client, source, "order.updated", wp_json(newer))
    deliver(client, source, "order.updated", wp_json(older))
    process_deliveries()

    order = Order.objects.get()
    assert (order.status, order.amount) == (OrderStatus.REFUNDED, Decimal("60.00"))


def test_refunds_and_cancellation_arrive_as_order_updates(client, source):
    partial = order_payload(729, date_modified_gmt="2017-03-26T10:00:00")
    partial["refunds"] = [{"id": 741, "reason": "One item back", "total": "-25.50"}]
    deliver(client, source, "order.updated", wp_json(partial))
    deliver(client, source, "order.updated", wp_json(order_payload(727, status="cancelled")))
    process_deliveries()

    orders = orders_by_id()
    assert (orders["729"].status, orders["729"].amount) == (OrderStatus.COMPLETED, Decimal("34.50"))
    assert orders["727"].status == OrderStatus.CANCELLED

    full = order_payload(729, status="refunded", date_modified_gmt="2017-03-27T10:00:00")  # refunded by hand
    deliver(client, source, "order.updated", wp_json(full))
    process_deliveries()
    assert Order.objects.get(external_id="729").status == OrderStatus.REFUNDED


def test_customer_webhooks_update_the_customer_and_a_deletion_erases_them(client, source):
    joao = fixture("customers.json")[0]
    deliver(client, source, "customer.created", wp_json(joao))
    deliver(client, source, "order.created", wp_json(order_payload(723)))
    renamed = {**joao, "last_name": "Silva Santos", "date_modified_gmt": "2017-03-29T10:00:00"}
    deliver(client, source, "customer.updated", wp_json(renamed))
    process_deliveries()
    assert Customer.objects.get(external_id="26").name == "João Silva Santos"

    deliver(client, source, "customer.deleted", wp_json({"id": 26}))
    assert process_deliveries() == ["processed"]

    customer = Customer.objects.get(orders__external_id="723")
    assert customer.erased_at is not None
    assert (customer.email, customer.name) == ("", "")
    assert not Customer.objects.filter(external_id="26").exists()


def test_a_trashed_order_is_cancelled_and_a_restored_one_counts_again(client, source):
    deliver(client, source, "order.created", wp_json(order_payload(729)))
    response = deliver(client, source, "order.deleted", wp_json({"id": 729}))
    unknown = deliver(client, source, "order.deleted", wp_json({"id": 9999}))

    assert (response.status_code, unknown.status_code) == (200, 200)
    assert process_deliveries() == ["processed"] * 3
    order = Order.objects.get()
    assert (order.external_id, order.status) == ("729", OrderStatus.CANCELLED)

    restored = order_payload(729, date_modified_gmt="2017-04-02T10:00:00")  # restoring changes it
    deliver(client, source, "order.restored", wp_json(restored))
    assert process_deliveries() == ["processed"]
    assert Order.objects.get().status == OrderStatus.COMPLETED


def test_orders_anonymised_by_wordpress_do_not_gather_under_one_guest(client, source):
    for order_id in (727, 728):
        payload = order_payload(order_id, date_modified_gmt="2017-04-01T10:00:00")
        payload["billing"] = {**payload["billing"], "email": "deleted@site.invalid"}
        deliver(client, source, "order.updated", wp_json(payload))
    process_deliveries()

    assert not Customer.objects.filter(external_id=guest_customer_id("deleted@site.invalid")).exists()
    assert not Order.objects.exists()  # no email left to key a guest by: skipped and reported


def test_an_order_without_a_billing_email_never_blanks_its_registered_customers_email(client, source):
    deliver(client, source, "customer.created", wp_json(fixture("customers.json")[0]))
    anonymised = order_payload(723, date_modified_gmt="2017-04-01T10:00:00")
    anonymised["billing"] = {**anonymised["billing"], "email": "deleted@site.invalid"}
    deliver(client, source, "order.updated", wp_json(anonymised))
    process_deliveries()

    order = Order.objects.select_related("customer").get()
    assert (order.customer.external_id, order.customer.email) == ("26", "joao.silva@example.com")


def test_the_delivery_id_is_the_same_for_a_replay_and_new_for_a_changed_order():
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Delivery-ID": "x"}
    first = webhook_delivery(headers, order_payload(729))

    assert webhook_delivery({**headers, "X-WC-Webhook-Delivery-ID": "y"}, order_payload(729)) == first
    assert webhook_delivery(headers, order_payload(729, status="cancelled")).delivery_id != first.delivery_id
    assert len(first.delivery_id) <= SourceDelivery._meta.get_field("delivery_id").max_length
