import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from campaigns.models import MarketingSpend
from lifecycle.models import Customer, Feedback, Order, Touchpoint

pytestmark = pytest.mark.django_db


def post(client, kind: str, payload, **extra):
    return client.post(f"/api/v1/{kind}/", data=json.dumps(payload), content_type="application/json", **extra)


def row_counts() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "orders": Order.objects.count(),
        "touchpoints": Touchpoint.objects.count(),
        "feedback": Feedback.objects.count(),
        "spend": MarketingSpend.objects.count(),
    }


def an_order(external_id="o-1", customer="c-1", **fields):
    return {
        "external_id": external_id,
        "customer_external_id": customer,
        "placed_at": "2025-03-01T10:00:00Z",
        "amount": "49.90",
        **fields,
    }


@pytest.fixture
def customer_c1(writer):
    response = post(
        writer,
        "customers",
        {
            "external_id": "c-1",
            "email": "ada@example.com",
            "name": "Ada",
            "first_seen_at": "2025-02-01T09:00:00Z",
            "acquisition_channel": "paid_ads",
        },
    )
    assert response.status_code == 201
    return Customer.objects.get(external_id="c-1")


# --- round trip and idempotency -------------------------------------------------------------------


def test_customer_round_trip_through_api_with_key(customer_c1):
    assert customer_c1.email == "ada@example.com"
    assert customer_c1.acquisition_channel.key == "paid_ads"
    assert customer_c1.first_seen_at == datetime(2025, 2, 1, 9, tzinfo=UTC)


def test_a_second_identical_post_changes_nothing(writer, customer_c1):
    batch = [an_order("o-1"), an_order("o-2", amount="10.00", channel="email", campaign_code="spring-25")]
    first = post(writer, "orders", batch)
    assert first.status_code == 201
    assert [r["status"] for r in first.json()["results"]] == ["created", "created"]
    stamps = dict(Order.objects.values_list("external_id", "updated_at"))

    second = post(writer, "orders", batch)

    assert second.status_code == 200
    assert second.json()["unchanged"] == 2 and second.json()["created"] == 0
    assert dict(Order.objects.values_list("external_id", "updated_at")) == stamps
    assert row_counts()["orders"] == 2


def test_changed_fields_update_the_row_by_external_id(writer, customer_c1):
    post(writer, "orders", an_order())
    response = post(writer, "orders", an_order(status="refunded"))
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "updated"
    assert Order.objects.get(external_id="o-1").status == "refunded"


def test_fields_left_out_of_an_update_are_kept(writer, customer_c1):
    response = post(writer, "customers", {"external_id": "c-1", "name": "Ada Lovelace"})
    assert response.json()["results"][0]["status"] == "updated"
    customer_c1.refresh_from_db()
    assert (customer_c1.name, customer_c1.email) == ("Ada Lovelace", "ada@example.com")


def test_single_object_and_list_are_both_accepted(writer, customer_c1):
    assert post(writer, "orders", an_order("o-1")).status_code == 201
    assert post(writer, "orders", [an_order("o-2")]).status_code == 201
    assert Order.objects.count() == 2


def test_per_item_results_name_index_status_id_and_key(writer, customer_c1):
    body = post(writer, "orders", [an_order("o-1"), an_order("o-2")]).json()
    order = Order.objects.get(external_id="o-2")
    assert body["results"][1] == {"index": 1, "status": "created", "id": order.pk, "key": {"external_id": "o-2"}}


def test_touchpoints_without_id_are_deduplicated_by_content(writer, customer_c1):
    touch = {
        "customer_external_id": "c-1",
        "occurred_at": "2025-02-03T12:00:00Z",
        "channel": "email",
        "kind": "email_open",
        "properties": {"subject": "Spring sale 🌸"},
    }
    assert post(writer, "touchpoints", touch).status_code == 201
    assert post(writer, "touchpoints", touch).json()["unchanged"] == 1
    assert post(writer, "touchpoints", {**touch, "kind": "email_click"}).status_code == 201
    assert Touchpoint.objects.count() == 2


def test_feedback_and_spend_round_trip(writer, customer_c1):
    assert (
        post(
            writer,
            "feedback",
            {"customer_external_id": "c-1", "score": 9, "comment": "שלום 👍", "submitted_at": "2025-03-05"},
        ).status_code
        == 201
    )
    spend = [
        {"channel": "paid_ads", "period": "month", "date": "2025-03-01", "amount": "1200.00"},
        {"channel": "paid_ads", "campaign_code": "spring-25", "period": "day", "date": "2025-03-02", "amount": "80"},
    ]
    assert post(writer, "marketing-spend", spend).status_code == 201
    again = post(writer, "marketing-spend", [{**spend[0], "amount": "1300.00"}, spend[1]]).json()
    assert [r["status"] for r in again["results"]] == ["updated", "unchanged"]
    assert MarketingSpend.objects.get(campaign_code="").amount == Decimal("1300.00")
    assert Feedback.objects.get().comment == "שלום 👍"


def test_unknown_customer_is_created_as_prospect_only_when_asked(writer):
    response = post(writer, "orders", an_order(customer="new-1", create_customer=True))
    assert response.status_code == 201
    customer = Customer.objects.get(external_id="new-1")
    assert customer.first_seen_at == datetime(2025, 3, 1, 10, tzinfo=UTC)


def test_an_earlier_event_moves_first_seen_back(writer, customer_c1):
    post(
        writer,
        "touchpoints",
        {
            "customer_external_id": "c-1",
            "occurred_at": "2025-01-15T08:00:00Z",
            "channel": "paid_ads",
            "kind": "ad_click",
        },
    )
    customer_c1.refresh_from_db()
    assert customer_c1.first_seen_at == datetime(2025, 1, 15, 8, tzinfo=UTC)


def test_referrer_may_arrive_in_the_same_batch(writer):
    response = post(
        writer, "customers", [{"external_id": "friend", "referred_by_external_id": "fan"}, {"external_id": "fan"}]
    )
    assert response.status_code == 201
    assert Customer.objects.get(external_id="friend").referred_by.external_id == "fan"
    again = post(writer, "customers", [{"external_id": "friend", "referred_by_external_id": "fan"}])
    assert again.json()["results"][0]["status"] == "unchanged"


def test_date_only_values_mean_midnight_utc(writer, customer_c1):
    post(writer, "orders", an_order(placed_at="2025-03-01"))
    assert Order.objects.get().placed_at == datetime(2025, 3, 1, tzinfo=UTC)


# --- bad input: a clear 400 naming item and field, nothing written ---------------------------------


def assert_rejected(response, *expected: tuple[int, str]):
    assert response.status_code == 400, response.content
    body = response.json()
    found = {(error["index"], error["field"]) for error in body["errors"]}
    assert set(expected) <= found, body
    assert "nothing was written" in body["detail"]
    for error in body["errors"]:
        assert error["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": 12.345}, "amount"),
        ({"status": "shipped"}, "status"),
        ({"placed_at": "yesterday"}, "placed_at"),
        ({"placed_at": "2025-13-45"}, "placed_at"),
        ({"placed_at": "1969-12-31T23:59:59Z"}, "placed_at"),
        ({"channel": "carrier_pigeon"}, "channel"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"external_id": "bad\x00id"}, "external_id"),
        ({"external_id": ["o-1"]}, "external_id"),
        ({"create_customer": "perhaps"}, "create_customer"),
    ],
)
def test_bad_order_fields_are_rejected_and_nothing_is_written(writer, customer_c1, fields, field):
    before = row_counts()
    response = post(writer, "orders", [an_order("good"), {**an_order("o-2"), **fields}])
    assert_rejected(response, (1, field))
    assert row_counts() == before


def test_order_in_the_future_is_rejected(writer, customer_c1):
    tomorrow_plus = (timezone.now() + timedelta(days=3)).isoformat()
    assert_rejected(post(writer, "orders", an_order(placed_at=tomorrow_plus)), (0, "placed_at"))


def test_missing_required_fields_are_each_named(writer):
    response = post(writer, "orders", [{"external_id": "o-1"}])
    assert_rejected(response, (0, "customer_external_id"), (0, "placed_at"), (0, "amount"))


def test_order_for_unknown_customer_is_rejected_without_create_flag(writer):
    response = post(writer, "orders", an_order(customer="nobody"))
    assert_rejected(response, (0, "customer_external_id"))
    assert "create_customer" in response.json()["errors"][0]["message"]
    assert row_counts()["customers"] == 0


def test_duplicate_external_id_in_one_batch_is_rejected(writer, customer_c1):
    response = post(writer, "orders", [an_order("o-1"), an_order("o-2"), an_order("o-1", amount="1")])
    assert_rejected(response, (2, "external_id"))
    assert response.json()["errors"][0]["message"] == "Duplicate of item 0."
    assert Order.objects.count() == 0


def test_every_bad_item_of_a_batch_is_reported(writer, customer_c1):
    response = post(writer, "orders", [an_order("a", amount="-1"), an_order("b"), an_order("c", status="lost")])
    assert_rejected(response, (0, "amount"), (2, "status"))
    assert response.json()["detail"].startswith("2 of 3 items")


@pytest.mark.parametrize(("score", "ok"), [(-1, False), (11, False), ("ten", False), (0, True), (10, True)])
def test_feedback_score_must_be_0_to_10(writer, customer_c1, score, ok):
    response = post(writer, "feedback", {"customer_external_id": "c-1", "score": score, "submitted_at": "2025-03-01"})
    if ok:
        assert response.status_code == 201
    else:
        assert_rejected(response, (0, "score"))
        assert Feedback.objects.count() == 0


def test_unknown_touchpoint_kind_is_rejected(writer, customer_c1):
    response = post(
        writer,
        "touchpoints",
        {"customer_external_id": "c-1", "occurred_at": "2025-03-01", "channel": "email", "kind": "telepathy"},
    )
    assert_rejected(response, (0, "kind"))


def test_touchpoint_properties_must_be_an_object(writer, customer_c1):
    response = post(
        writer,
        "touchpoints",
        {
            "customer_external_id": "c-1",
            "occurred_at": "2025-03-01",
            "channel": "email",
            "kind": "email_open",
            "properties": [1, 2],
        },
    )
    assert_rejected(response, (0, "properties"))


def test_monthly_spend_must_be_dated_on_the_first(writer):
    response = post(
        writer, "marketing-spend", {"channel": "email", "period": "month", "date": "2025-03-15", "amount": "10"}
    )
    assert_rejected(response, (0, "date"))


def test_self_referral_and_unknown_referrer_are_rejected(writer):
    response = post(
        writer,
        "customers",
        [
            {"external_id": "a", "referred_by_external_id": "a"},
            {"external_id": "b", "referred_by_external_id": "ghost"},
        ],
    )
    assert_rejected(response, (0, "referred_by_external_id"), (1, "referred_by_external_id"))


def test_malformed_json_gets_400(writer):
    response = writer.post("/api/v1/orders/", data='[{"external_id": "o-1",', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_nan_literal_in_json_is_refused(writer, customer_c1):
    body = '{"external_id": "o-1", "customer_external_id": "c-1", "placed_at": "2025-03-01", "amount": NaN}'
    response = writer.post("/api/v1/orders/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert Order.objects.count() == 0


@pytest.mark.parametrize("payload", ["just a string", 42, None])
def test_payload_that_is_not_an_object_or_list_gets_400(writer, payload):
    response = post(writer, "orders", payload)
    assert response.status_code == 400


def test_list_items_that_are_not_objects_are_named(writer):
    assert_rejected(post(writer, "orders", ["o-1"]), (0, ""))


def test_empty_batch_gets_400(writer):
    response = post(writer, "orders", [])
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_batch_over_1000_items_gets_400(writer, customer_c1):
    response = post(writer, "orders", [an_order(f"o-{i}") for i in range(1001)])
    assert response.status_code == 400
    assert "at most 1000" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_batch_of_exactly_1000_items_is_accepted(writer, customer_c1):
    response = post(writer, "orders", [an_order(f"o-{i}") for i in range(1000)])
    assert response.status_code == 201
    assert Order.objects.count() == 1000


@override_settings(CLM_API_MAX_BODY_BYTES=2000)
def test_oversized_body_gets_413(writer, customer_c1):
    response = post(writer, "orders", [an_order(f"o-{i}") for i in range(40)])
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert Order.objects.count() == 0


# --- authentication and scopes --------------------------------------------------------------------


def test_ingestion_without_credentials_gets_401(api_client, db):
    response = post(api_client, "customers", {"external_id": "c-1"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert Customer.objects.count() == 0


def test_read_only_key_cannot_write(reader):
    response = post(reader, "customers", {"external_id": "c-1"})
    assert response.status_code == 403
    assert "write scope" in response.json()["detail"]


def test_wrong_key_gets_401(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.not-a-real-key")
    assert post(api_client, "customers", {"external_id": "c-1"}).status_code == 401
