"""Campaigns: create/update validation, spend upsert, results on a hand-made history, and the API."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.campaigns.crud import campaign_create, campaign_update
from campaigns.campaigns.results import ATTRIBUTION_CODE_LABEL, campaign_results
from campaigns.campaigns.spend import campaign_spend_record
from campaigns.models import Campaign, MarketingSpend, SpendPeriod
from lifecycle.models import Channel, LifecycleModel, OrderStatus, Stage, StageTransition, TransitionCause
from lifecycle.templates import template_install
from tests.conftest import error_fields
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory, at, transitions_record

pytestmark = pytest.mark.django_db

CODE = "spring24-email"


@pytest.fixture
def status_model() -> LifecycleModel:
    """The `status` model migrate installs: prospect(1) → new(2) → active(3) funnel; inactive(4), former(5) exit."""
    return LifecycleModel.objects.get(key="status")


def make_campaign(**overrides) -> Campaign:
    values = {
        "code": CODE,
        "name": "Spring 2024 email",
        "channel": "email",
        "model": "status",
        "stages": ["new", "inactive"],
        "start_date": date(2024, 3, 1),
        "end_date": date(2024, 3, 31),
        "budget": Decimal("1000.00"),
        "attribution_days": 30,
    }
    return campaign_create(**{**values, **overrides})


def campaign_payload(**overrides) -> dict:
    payload = {
        "code": CODE,
        "name": "Spring 2024 email",
        "channel": "email",
        "model": "status",
        "stages": ["new", "inactive"],
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
        "budget": "1000.00",
        "status": "active",
        "attribution_days": 30,
    }
    payload.update(overrides)
    return payload


# --- create and update ------------------------------------------------------------------------------


def test_campaign_create_stores_keys_as_rows_and_records_history(status_model):
    campaign = make_campaign()

    assert campaign.channel.key == "email"
    assert campaign.model == status_model
    assert sorted(campaign.stages.values_list("key", flat=True)) == ["inactive", "new"]
    assert campaign.history.latest().stages.count() == 2  # the audit history records the target stages too


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": ""}, "code"),
        ({"code": " padded "}, "code"),
        ({"name": ""}, "name"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"model": "nope"}, "model"),
        ({"stages": []}, "stages"),
        ({"stages": ["new", "retention"]}, "stages"),
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"end_date": date(2024, 2, 28)}, "end_date"),
        ({"budget": Decimal("-1")}, "budget"),
        ({"budget": "lots"}, "budget"),
        ({"status": "running"}, "status"),
        ({"attribution_days": 0}, "attribution_days"),
    ],
)
def test_campaign_create_refuses_bad_input_naming_the_field_and_writes_nothing(status_model, overrides, field):
    with pytest.raises(ValidationError) as raised:
        make_campaign(**overrides)

    assert field in raised.value.message_dict
    assert not Campaign.objects.exists()


def test_campaign_create_refuses_a_stage_of_another_model_given_as_a_row(status_model):
    ecommerce, _ = template_install(key="ecommerce")
    retention = Stage.objects.get(model=ecommerce, key="retention")

    with pytest.raises(ValidationError) as raised:
        make_campaign(stages=[retention])

    assert "belongs to another model" in raised.value.message_dict["stages"][0]
    assert not Campaign.objects.exists()


def test_campaign_create_refuses_a_duplicate_code(status_model):
    make_campaign()

    with pytest.raises(ValidationError) as raised:
        make_campaign(name="Again")

    assert "already exists" in raised.value.message_dict["code"][0]
    assert Campaign.objects.count() == 1


def test_campaign_create_reports_every_bad_field_at_once(status_model):
    with pytest.raises(ValidationError) as raised:
        make_campaign(channel="nope", end_date=date(2024, 1, 1), budget=-5)

    assert set(raised.value.message_dict) == {"channel", "end_date", "budget"}


def test_campaign_update_validates_changes_against_the_stored_fields(status_model):
    campaign = make_campaign()

    with pytest.raises(ValidationError) as raised:
        campaign_update(campaign=campaign, data={"end_date": date(2024, 2, 1)})
    assert "end_date" in raised.value.message_dict

    template_install(key="ecommerce")
    with pytest.raises(ValidationError) as raised:  # the stored stages are the status model's
        campaign_update(campaign=campaign, data={"model": "ecommerce"})
    assert "stages" in raised.value.message_dict

    campaign.refresh_from_db()
    assert campaign.end_date == date(2024, 3, 31)
    assert campaign.model.key == "status"

    campaign_update(campaign=campaign, data={"model": "ecommerce", "stages": ["reach"], "budget": None})
    campaign.refresh_from_db()
    assert campaign.model.key == "ecommerce"
    assert list(campaign.stages.values_list("key", flat=True)) == ["reach"]
    assert campaign.budget is None


def test_campaign_code_cannot_change_once_spend_is_recorded(status_model):
    campaign = make_campaign()
    campaign_update(campaign=campaign, data={"code": "spring24-mail"})  # no spend yet: allowed
    campaign_spend_record(campaign=campaign, period="day", date=date(2024, 3, 2), amount=10)

    with pytest.raises(ValidationError) as raised:
        campaign_update(campaign=campaign, data={"code": "other"})

    assert "code" in raised.value.message_dict
    assert Campaign.objects.get().code == "spring24-mail"


# --- spend ------------------------------------------------------------------------------------------


def test_spend_record_is_an_idempotent_upsert_by_channel_code_period_and_date(status_model):
    campaign = make_campaign()

    first = campaign_spend_record(campaign=campaign, period="day", date="2024-03-05", amount="100.00")
    again = campaign_spend_record(campaign=campaign, period="day", date=date(2024, 3, 5), amount=Decimal("100"))
    changed = campaign_spend_record(campaign=campaign, period="day", date=date(2024, 3, 5), amount=120)

    assert first.pk == again.pk == changed.pk
    row = MarketingSpend.objects.get()
    assert (row.channel.key, row.campaign_code, row.period, row.amount) == ("email", CODE, "day", Decimal("120.00"))


def test_monthly_spend_is_dated_on_the_first_of_its_month_and_another_day_is_refused(status_model):
    campaign = make_campaign()

    campaign_spend_record(campaign=campaign, period="month", date="2024-03-01", amount=200)
    with pytest.raises(ValidationError) as raised:
        campaign_spend_record(campaign=campaign, period="month", date="2024-03-15", amount=250)

    [error] = raised.value.error_dict["date"]
    assert error.code == "not_first_of_month"
    assert error.message == "Monthly spend is dated on the first day of its month: 2024-03-01, not 2024-03-15."
    row = MarketingSpend.objects.get()
    assert (row.period, row.date, row.amount) == (SpendPeriod.MONTH, date(2024, 3, 1), Decimal("200.00"))


def test_the_admin_refuses_a_monthly_date_not_on_the_first_with_the_same_message(admin_client, status_model):
    url = "/admin/campaigns/marketingspend/add/"
    form = {"channel": Channel.objects.get(key="email").pk, "period": "month", "date": "2024-03-15", "amount": "10"}

    refused = admin_client.post(url, form)

    assert refused.status_code == 200  # the form again, with the error under the date
    assert (
        "Monthly spend is dated on the first day of its month: 2024-03-01, not 2024-03-15." in refused.content.decode()
    )
    assert not MarketingSpend.objects.exists()
    assert admin_client.post(url, {**form, "date": "2024-03-01"}).status_code == 302
    assert MarketingSpend.objects.get().date == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"date": "2024-02-30"}, "date"),
        ({"date": "05/03/2024"}, "date"),
        ({"date": "1969-12-31"}, "date"),
        ({"period": "week"}, "period"),
    ],
)
def test_spend_record_refuses_bad_input(status_model, kwargs, field):
    campaign = make_campaign()

    with pytest.raises(ValidationError) as raised:
        campaign_spend_record(campaign=campaign, **{"period": "day", "date": "2024-03-05", "amount": 10, **kwargs})

    assert field in raised.value.message_dict
    assert not MarketingSpend.objects.exists()


def test_spend_in_the_future_is_refused(status_model):
    campaign = make_campaign()
    next_week = timezone.now().date() + timedelta(days=7)

    with pytest.raises(ValidationError) as raised:
        campaign_spend_record(campaign=campaign, period="day", date=next_week, amount=10)

    assert "future" in raised.value.message_dict["date"][0]


# --- results ----------------------------------------------------------------------------------------


@pytest.fixture
def history(status_model):
    """A campaign (code spring24-email, email, targets new + inactive, March 2024, 30 attribution days) and a
    small history whose results are worked out by hand in test_campaign_results_on_a_small_history."""
    campaign = make_campaign()
    email = Channel.objects.get(key="email")
    paid = Channel.objects.get(key="paid_ads")

    def touch(customer, day, code=CODE):
        TouchpointFactory(customer=customer, occurred_at=at(day), channel=email, campaign_code=code)

    def order(customer, day, amount, code="", status=OrderStatus.COMPLETED):
        OrderFactory(customer=customer, placed_at=at(day), amount=Decimal(amount), campaign_code=code, status=status)

    # A: new at the touch (03-05), new → active on 03-20 (15 days): advanced. Order 03-10 in the window.
    a = CustomerFactory(external_id="A")
    transitions_record(status_model, a, [("prospect", "2024-01-01"), ("new", "2024-02-01")])
    transitions_record_next(status_model, a, "new", "active", "2024-03-20")
    touch(a, "2024-03-05")
    order(a, "2024-02-01", "10")
    order(a, "2024-03-10", "50")

    # B: inactive at the first touch (03-02); inactive → active on 04-10, 39 days later: not advanced.
    # Order 03-31 (29 days) in the window; order 04-10 carries the code but is outside the window.
    b = CustomerFactory(external_id="B")
    transitions_record(status_model, b, [("new", "2023-06-01"), ("inactive", "2023-12-01")])
    transitions_record_next(status_model, b, "inactive", "active", "2024-04-10")
    touch(b, "2024-03-02")
    touch(b, "2024-03-15")
    order(b, "2023-06-01", "60")
    order(b, "2024-03-31", "25")
    order(b, "2024-04-10", "80", code=CODE)

    # C: a prospect at the touch (not targeted); first order 03-12 with the code: new by both attributions.
    c = CustomerFactory(external_id="C")
    transitions_record(status_model, c, [("prospect", "2024-01-01")])
    transitions_record_next(status_model, c, "prospect", "new", "2024-03-12")
    touch(c, "2024-03-10")
    order(c, "2024-03-12", "30", code=CODE)

    # D: never touched; first order 03-20 with the code: new by the code only. Its cancelled order never counts.
    d = CustomerFactory(external_id="D")
    order(d, "2024-03-20", "40", code=CODE)
    order(d, "2024-03-21", "999", code=CODE, status=OrderStatus.CANCELLED)

    # E: touched with the code after the period, and with another code in it: not reached.
    e = CustomerFactory(external_id="E")
    touch(e, "2024-04-05")
    touch(e, "2024-03-05", code="other")

    # F: new at the touch (03-08), new → inactive on 03-25 (to an exit stage): not advanced. Order 03-09 with
    # another code still counts in the window.
    f = CustomerFactory(external_id="F")
    transitions_record(status_model, f, [("new", "2024-02-20")])
    transitions_record_next(status_model, f, "new", "inactive", "2024-03-25")
    touch(f, "2024-03-08")
    order(f, "2024-02-20", "10")
    order(f, "2024-03-09", "20", code="other")

    # G: inactive at the touch (03-03), inactive → active on 03-20: out of an exit stage: advanced. Refunded
    # order in the window does not count.
    g = CustomerFactory(external_id="G")
    transitions_record(status_model, g, [("new", "2023-05-01"), ("inactive", "2023-11-01")])
    transitions_record_next(status_model, g, "inactive", "active", "2024-03-20")
    touch(g, "2024-03-03")
    order(g, "2023-05-01", "15")
    order(g, "2024-03-05", "100", status=OrderStatus.REFUNDED)

    # H: an order with the code before the campaign started: in neither attribution.
    h = CustomerFactory(external_id="H")
    order(h, "2024-02-15", "70", code=CODE)

    # I: a prospect touched on 03-25, first order 04-15 (21 days) without a code: new by the window only.
    i = CustomerFactory(external_id="I")
    transitions_record(status_model, i, [("prospect", "2024-01-01")])
    touch(i, "2024-03-25")
    order(i, "2024-04-15", "45")

    # Spend: 100 (day) + 200 (month, dated 03-01) on email through the service, 50 on paid ads under the same code
    # through ingestion; another code's spend does not count.
    campaign_spend_record(campaign=campaign, period="day", date="2024-03-05", amount="100")
    campaign_spend_record(campaign=campaign, period="month", date="2024-03-01", amount="200")
    MarketingSpend.objects.create(channel=paid, campaign_code=CODE, period="day", date=date(2024, 3, 10), amount=50)
    MarketingSpend.objects.create(channel=email, campaign_code="other", period="day", date=date(2024, 3, 10), amount=9)
    return campaign


def transitions_record_next(model: LifecycleModel, customer, from_key: str, to_key: str, day: str) -> None:
    """Append one transition to a customer's chain (transitions_record writes a chain from its first stage)."""
    stages = {stage.key: stage for stage in Stage.objects.filter(model=model)}
    StageTransition.objects.create(
        customer=customer,
        model=model,
        from_stage=stages[from_key],
        to_stage=stages[to_key],
        at=at(day),
        cause=TransitionCause.BACKFILL,
    )


def test_campaign_results_on_a_small_history(history):
    results = campaign_results(campaign=history, as_of=at("2024-06-30"))

    assert json.loads(json.dumps(results)) == results  # plain JSON: stored or sent as is
    assert results["spend"] == 350.0
    assert results["reached"] == 6  # A, B, C, F, G, I
    # In a target stage at the first touch: A (new), B (inactive), F (new), G (inactive); advanced: A and G.
    assert results["advancement"] | {"definition": None} == {
        "in_target_stage": 4,
        "advanced": 2,
        "rate": 0.5,
        "definition": None,
    }
    by_code = results["revenue"]["campaign_code"]
    assert by_code == {
        "label": ATTRIBUTION_CODE_LABEL,
        "orders": 3,  # B 80, C 30, D 40
        "customers": 3,
        "revenue": 150.0,
        "roas": round(150 / 350, 4),
    }
    by_window = results["revenue"]["touchpoint_window"]
    assert by_window == {
        "label": "orders within 30 days after a campaign touchpoint",
        "orders": 5,  # A 50, B 25, C 30, F 20, I 45
        "customers": 5,
        "revenue": 170.0,
        "roas": round(170 / 350, 4),
    }
    new = results["new_customers"]
    assert (new["total"], new["by_campaign_code"], new["by_touchpoint_window"]) == (3, 2, 2)  # C, D, I
    assert results["cac"] == round(350 / 3, 2)


def test_campaign_results_only_count_what_happened_by_as_of(history):
    results = campaign_results(campaign=history, as_of=at("2024-03-04", 23))

    assert results["spend"] == 200.0  # the month row is dated 03-01; the day rows are later
    assert results["reached"] == 2  # B (03-02) and G (03-03)
    assert results["advancement"]["in_target_stage"] == 2
    assert results["advancement"]["advanced"] == 0  # G advances on 03-20
    assert results["revenue"]["campaign_code"]["orders"] == 0
    assert results["new_customers"]["total"] == 0
    assert results["cac"] is None


def test_campaign_results_without_spend_have_no_roas_or_cac(status_model):
    campaign = make_campaign(code="free-push", channel="app_notifications", stages=["prospect"])
    customer = CustomerFactory()
    TouchpointFactory(customer=customer, occurred_at=at("2024-03-02"), campaign_code="free-push")
    OrderFactory(customer=customer, placed_at=at("2024-03-03"), amount=Decimal("25"), campaign_code="free-push")

    results = campaign_results(campaign=campaign, as_of=at("2024-06-30"))

    assert results["spend"] == 0.0
    assert results["revenue"]["campaign_code"]["revenue"] == 25.0
    assert results["revenue"]["campaign_code"]["roas"] is None
    assert results["revenue"]["touchpoint_window"]["roas"] is None
    assert results["new_customers"]["total"] == 1
    assert results["cac"] == 0.0  # a free customer; CAC is null only without new customers
    assert results["advancement"]["rate"] is None  # no transition log: nobody was in a target stage


def test_campaign_results_run_a_bounded_number_of_queries(history, django_assert_max_num_queries):
    for _ in range(20):  # more reached customers must not mean more queries
        TouchpointFactory(customer=CustomerFactory(), occurred_at=at("2024-03-06"), campaign_code=CODE)

    with django_assert_max_num_queries(7):
        results = campaign_results(campaign=history, as_of=at("2024-06-30"))

    assert results["reached"] == 26


# --- API --------------------------------------------------------------------------------------------

URL = "/api/v1/campaigns/"


def test_api_creates_a_campaign_and_lists_it_with_spend_to_date(writer, reader, status_model):
    response = writer.post(URL, campaign_payload(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stages"] == ["new", "inactive"]
    assert (body["channel"], body["model"], body["budget"], body["spend_to_date"]) == ("email", "status", 1000.0, 0)

    spend = writer.post(
        f"{URL}{body['id']}/spend/",
        [
            {"period": "day", "date": "2024-03-05", "amount": "100"},
            {"period": "month", "date": "2024-03-01", "amount": 5},
        ],
        format="json",
    )
    assert spend.status_code == 201, spend.json()
    assert spend.json()["spend_to_date"] == 105.0

    listed = reader.get(URL)
    assert listed.status_code == 200
    [item] = listed.json()
    assert (item["code"], item["status"], item["start_date"], item["end_date"]) == (
        CODE,
        "active",
        "2024-03-01",
        "2024-03-31",
    )
    assert item["spend_to_date"] == 105.0
    assert reader.get(URL, {"status": "draft"}).json() == []
    assert "status" in error_fields(reader.get(URL, {"status": "running"}))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"stages": ["new", "retention"]}, "stages"),  # retention is a stage of the ecommerce model
        ({"stages": []}, "stages"),
        ({"end_date": "2024-02-01"}, "end_date"),
        ({"start_date": "2024-02-30"}, "start_date"),
        ({"budget": "-10"}, "budget"),
        ({"channel": "fax"}, "channel"),
        ({"model": "nope"}, "model"),
        ({"status": "running"}, "status"),
        ({"attribution_days": 0}, "attribution_days"),
        ({"code": ""}, "code"),
    ],
)
def test_api_create_refuses_bad_input_with_400_naming_the_field(writer, status_model, overrides, field):
    template_install(key="ecommerce")

    response = writer.post(URL, campaign_payload(**overrides), format="json")

    assert response.status_code == 400
    assert field in error_fields(response)
    assert not Campaign.objects.exists()


def test_api_create_refuses_a_duplicate_code(writer, status_model):
    assert writer.post(URL, campaign_payload(), format="json").status_code == 201

    response = writer.post(URL, campaign_payload(name="Twice"), format="json")

    assert response.status_code == 400
    assert "already exists" in error_fields(response)["code"][0]
    assert Campaign.objects.count() == 1


def test_api_patch_changes_fields_and_refuses_bad_ones(writer, status_model):
    campaign = make_campaign()
    url = f"{URL}{campaign.pk}/"

    response = writer.patch(url, {"status": "paused", "end_date": "2024-04-15"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["end_date"]) == ("paused", "2024-04-15")

    for payload, field in [
        ({"end_date": "2024-02-01"}, "end_date"),
        ({"budget": -1}, "budget"),
        ({"stages": ["gone"]}, "stages"),
        ({"colour": "red"}, "colour"),
    ]:
        response = writer.patch(url, payload, format="json")
        assert response.status_code == 400, payload
        assert field in error_fields(response)
    campaign.refresh_from_db()
    assert (campaign.end_date, campaign.budget) == (date(2024, 4, 15), Decimal("1000.00"))


def test_api_detail_shows_the_results(reader, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = reader.get(f"{URL}{history.pk}/", {"as_of": "2024-06-30"})

    assert response.status_code == 200
    body = response.json()
    assert body["code"] == CODE
    assert body["results"]["reached"] == 6
    assert body["results"]["revenue"]["touchpoint_window"]["revenue"] == 170.0
    assert body["results"]["cac"] == 116.67


def test_api_unknown_campaign_is_404(reader, writer, db):
    assert reader.get(f"{URL}999/").status_code == 404
    assert writer.patch(f"{URL}999/", {"name": "x"}, format="json").status_code == 404
    response = writer.post(f"{URL}999/spend/", {"period": "day", "date": "2024-03-01", "amount": 1}, format="json")
    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_api_spend_is_all_or_nothing_and_idempotent(writer, status_model):
    campaign = make_campaign()
    url = f"{URL}{campaign.pk}/spend/"
    good = {"period": "day", "date": "2024-03-05", "amount": "100.00"}

    bad = writer.post(
        url,
        [good, {"period": "day", "date": "2024-03-06", "amount": "-5"}, {"period": "day", "date": "06.03.2024"}],
        format="json",
    )
    assert bad.status_code == 400
    errors = {(error["index"], error["field"]) for error in bad.json()["errors"]}
    assert errors == {(1, "amount"), (2, "date"), (2, "amount")}
    assert not MarketingSpend.objects.exists()

    first = writer.post(url, good, format="json")
    assert first.status_code == 201
    assert first.json()["results"][0]["status"] == "created"
    again = writer.post(url, good, format="json")
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "unchanged"
    assert MarketingSpend.objects.count() == 1


def test_api_spend_refuses_a_monthly_date_not_on_the_first_as_the_spend_ingestion_does(writer, status_model):
    campaign = make_campaign()
    month = {"period": "month", "date": "2024-03-15", "amount": "400.00"}

    response = writer.post(f"{URL}{campaign.pk}/spend/", [{**month, "date": "2024-02-01"}, month], format="json")
    ingested = writer.post("/api/v1/marketing-spend/", {**month, "channel": "email"}, format="json")

    assert response.status_code == ingested.status_code == 400
    message = "Monthly spend is dated on the first day of its month: 2024-03-01, not 2024-03-15."
    assert error_fields(response) == error_fields(ingested) == {"date": [message]}
    [error] = response.json()["errors"]
    assert (error["index"], error["code"]) == (1, "not_first_of_month")
    assert response.json()["errors"][0]["code"] == ingested.json()["errors"][0]["code"]
    assert not MarketingSpend.objects.exists()  # the valid first item neither


def test_api_spend_refuses_the_same_period_and_date_twice_in_one_batch(writer, status_model):
    campaign = make_campaign()
    day = {"period": "day", "date": "2024-03-05", "amount": "10"}

    response = writer.post(f"{URL}{campaign.pk}/spend/", [day, {**day, "amount": "12"}], format="json")

    assert response.status_code == 400
    assert error_fields(response) == {"": ["Duplicate of item 0."]}
    assert not MarketingSpend.objects.exists()


def test_api_spend_in_the_future_is_refused_by_the_service(writer, status_model):
    campaign = make_campaign()
    next_week = (timezone.now().date() + timedelta(days=7)).isoformat()

    response = writer.post(
        f"{URL}{campaign.pk}/spend/",
        [{"period": "day", "date": "2024-03-05", "amount": 1}, {"period": "day", "date": next_week, "amount": 1}],
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1
    assert response.json()["errors"][0]["field"] == "date"
    assert not MarketingSpend.objects.exists()  # the first item, written before the second failed, is rolled back


def test_a_read_key_cannot_write(reader, status_model):
    campaign = make_campaign()

    assert reader.post(URL, campaign_payload(code="other"), format="json").status_code == 403
    assert reader.patch(f"{URL}{campaign.pk}/", {"name": "x"}, format="json").status_code == 403
    spend = {"period": "day", "date": "2024-03-05", "amount": 1}
    assert reader.post(f"{URL}{campaign.pk}/spend/", spend, format="json").status_code == 403
    assert Campaign.objects.count() == 1
    assert not MarketingSpend.objects.exists()
    assert reader.get(URL).status_code == 200


def test_anonymous_requests_are_refused(api_client, status_model):
    assert api_client.get(URL).status_code in (401, 403)


def test_api_list_runs_a_bounded_number_of_queries(reader, status_model, django_assert_max_num_queries):
    for n in range(5):
        make_campaign(code=f"c{n}")

    with django_assert_max_num_queries(5):
        response = reader.get(URL)

    assert len(response.json()) == 5
