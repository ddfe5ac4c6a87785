"""Personal data: a customer's export and erasure through the API (admin scope) and the admin (docs/PRIVACY.md)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from rest_framework.test import APIClient

from campaigns.experiments.crud import experiment_create, experiment_start
from campaigns.models import Exposure
from clm.base.services import api_key_create
from lifecycle.models import Channel, Customer, CustomerStage, Feedback, LifecycleModel, Order, Stage, Touchpoint
from lifecycle.privacy import customer_data_export, customer_erase
from metrics.cohorts import historical_clv_compute
from metrics.filters import MetricFilters
from metrics.funnel import funnel_compute
from metrics.models import ClvFit, CustomerValue
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, TouchpointFactory, at, transitions_record

pytestmark = pytest.mark.django_db

EMAIL = "jane.roe@example.org"
NAME = "Jane Roe"
COMMENT = "Call me on +49 170 1234567, Jane"
PROPERTIES = {"search": "jane roe wedding dress", "ip": "203.0.113.7"}
AS_OF = at("2024-06-30")


def key_client(*scopes: str) -> APIClient:
    _, key = api_key_create(name=f"key {'+'.join(scopes)}", scopes=set(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def admin_key() -> APIClient:
    return key_client("admin")


@pytest.fixture
def status_model() -> LifecycleModel:
    return LifecycleModel.objects.get(key="status")


@pytest.fixture
def jane(status_model) -> Customer:
    """A customer with a record in every table that holds per-customer data, and a neighbour who must stay."""
    referrer = CustomerFactory(external_id="ref-1", email="ref@example.org")
    customer = CustomerFactory(
        external_id="jane-1",
        email=EMAIL,
        name=NAME,
        referred_by=referrer,
        acquisition_channel=Channel.objects.get(key="email"),
    )
    OrderFactory(external_id="o-1001", customer=customer, placed_at=at("2024-02-01"), amount=Decimal("49.90"))
    OrderFactory(external_id="o-1002", customer=customer, placed_at=at("2024-03-01"), amount=Decimal("20.10"))
    TouchpointFactory(external_id="t-2001", customer=customer, properties=PROPERTIES, campaign_code="spring")
    FeedbackFactory(external_id="f-3001", customer=customer, score=3, comment=COMMENT)
    transitions_record(status_model, customer, [("new", "2024-02-01"), ("active", "2024-03-01")])
    CustomerStage.objects.create(
        model=status_model,
        customer=customer,
        stage=Stage.objects.get(model=status_model, key="active"),
        since=at("2024-03-01"),
    )
    fit = ClvFit.objects.create(
        as_of=AS_OF, fitted_at=AS_OF, customers=2, repeat_customers=1, r=1, alpha=1, a=1, b=1, log_likelihood=-1
    )
    CustomerValue.objects.create(
        customer=customer,
        fit=fit,
        frequency=1,
        recency_weeks=4,
        age_weeks=21,
        monetary_value=20.1,
        p_alive=0.8,
        expected_purchases_90d=0.5,
        expected_purchases_365d=1.5,
        expected_spend_90d=10,
        expected_spend_365d=30,
    )
    experiment = experiment_create(
        key="banner",
        name="Banner",
        model=status_model,
        stage=Stage.objects.get(model=status_model, key="active"),
        goal="place_order",
        window_days=10,
        variants=[{"key": "control", "name": "Control", "is_control": True}, {"key": "new", "name": "New"}],
    )
    experiment_start(experiment=experiment, at=at("2024-03-02"))
    Exposure.objects.create(
        experiment=experiment,
        variant=experiment.variants.get(key="new"),
        customer=customer,
        exposed_at=at("2024-03-05"),
    )
    neighbour = CustomerFactory(external_id="other-1", email="other@example.org", name="Other Person")
    OrderFactory(external_id="o-other-1", customer=neighbour, placed_at=at("2024-02-10"))
    TouchpointFactory(customer=neighbour, properties={"search": "other"})
    FeedbackFactory(customer=neighbour, comment="other comment")
    return customer


def user_with_role(username: str, role: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def customer_rows_text(customer_pk: int) -> str:
    """Every stored row that belongs to the customer, with its audit history and admin log, as one text."""
    rows = [
        *Customer.objects.filter(pk=customer_pk).values(),
        *Customer.history.filter(id=customer_pk).values(),
        *Order.objects.filter(customer_id=customer_pk).values(),
        *Touchpoint.objects.filter(customer_id=customer_pk).values(),
        *CustomerValue.objects.filter(customer_id=customer_pk).values(),
        *Exposure.objects.filter(customer_id=customer_pk).values(),
        *Feedback.objects.filter(customer_id=customer_pk).values(),
        *LogEntry.objects.filter(object_id=str(customer_pk)).values(),
    ]
    return json.dumps(rows, default=str)


# --- export -----------------------------------------------------------------------------------------


def test_export_holds_every_record_of_the_customer_and_no_one_elses(jane, admin_key):
    response = admin_key.get("/api/v1/customers/jane-1/export/")

    assert response.status_code == 200
    data = response.json()
    assert data["customer"] == {
        "external_id": "jane-1",
        "email": EMAIL,
        "name": NAME,
        "first_seen_at": "2024-01-01T00:00:00Z",
        "acquisition_channel": "email",
        "referred_by": "ref-1",
        "created_at": data["customer"]["created_at"],
        "updated_at": data["customer"]["updated_at"],
        "erased_at": None,
        "email_consent": "not_subscribed",
        "email_consent_at": None,
        "email_consent_source": "",
        "sms_consent": "not_subscribed",
        "sms_consent_at": None,
        "sms_consent_source": "",
    }
    assert [(o["external_id"], o["amount"], o["channel"]) for o in data["orders"]] == [
        ("o-1001", "49.90", None),
        ("o-1002", "20.10", None),
    ]
    assert [(t["external_id"], t["properties"], t["channel"], t["campaign_code"]) for t in data["touchpoints"]] == [
        ("t-2001", PROPERTIES, "email", "spring")
    ]
    assert [(f["external_id"], f["score"], f["comment"]) for f in data["feedback"]] == [("f-3001", 3, COMMENT)]
    assert data["stages"] == [{"model": "status", "stage": "active", "since": "2024-03-01T12:00:00Z"}]
    assert [(t["from"], t["to"], t["at"]) for t in data["transitions"]] == [
        (None, "new", "2024-02-01T12:00:00Z"),
        ("new", "active", "2024-03-01T12:00:00Z"),
    ]
    # Registered by metrics and campaigns in their AppConfig.ready.
    assert data["customer_value"] == [
        {
            "fitted_at": "2024-06-30T12:00:00Z",
            "frequency": 1,
            "recency_weeks": 4.0,
            "age_weeks": 21.0,
            "monetary_value": 20.1,
            "p_alive": 0.8,
            "expected_purchases_90d": 0.5,
            "expected_purchases_365d": 1.5,
            "expected_spend_90d": 10.0,
            "expected_spend_365d": 30.0,
        }
    ]
    assert data["experiment_exposures"] == [
        {"experiment": "banner", "variant": "new", "exposed_at": "2024-03-05T12:00:00Z"}
    ]
    assert "other" not in json.dumps(data)


def test_export_takes_one_query_per_table(jane, django_assert_max_num_queries):
    # customer, 8 tables, the audit record
    with django_assert_max_num_queries(10):
        customer_data_export(customer=jane, actor=None)


def test_export_is_recorded_in_the_customers_audit_history(jane):
    ada = user_with_role("ada", "admin")
    customer_data_export(customer=jane, actor=ada)

    record = Customer.history.filter(id=jane.pk).latest()
    assert (record.history_user, record.history_change_reason) == (ada, "personal data exported")


# --- erasure ----------------------------------------------------------------------------------------


def test_erasure_removes_the_personal_fields_everywhere_including_the_history(jane, admin_key):
    # The creation and an export left copies of the external id in the customer's history.
    customer_data_export(customer=jane, actor=None)
    before = customer_rows_text(jane.pk)
    assert EMAIL in before and "jane-1" in before and "wedding" in before and "+49 170" in before

    response = admin_key.post("/api/v1/customers/jane-1/erase/", {"reason": "GDPR ticket 4711"}, format="json")

    assert response.status_code == 200, response.content
    summary = response.json()
    assert summary["external_id"].startswith(f"erased-{jane.pk}-")
    assert summary["already_erased"] is False
    assert summary["cleared"] == {"touchpoints": 1, "feedback": 1, "consent_changes": 0, "history_records": 2}
    assert summary["kept"] == {
        "orders": 2,
        "touchpoints": 1,
        "feedback": 1,
        "stages": 1,
        "transitions": 2,
        "consent_changes": 0,
        "customer_value": 1,
        "experiment_exposures": 1,
    }
    after = customer_rows_text(jane.pk)
    for personal in (EMAIL, NAME, "Jane", "jane-1", "wedding", "203.0.113.7", "+49 170"):
        assert personal not in after, personal
    jane.refresh_from_db()
    assert (jane.email, jane.name, jane.erased_at is not None) == ("", "", True)
    # The neighbour is untouched.
    assert Customer.objects.get(external_id="other-1").email == "other@example.org"
    assert Touchpoint.objects.get(customer__external_id="other-1").properties == {"search": "other"}


def test_erasure_keeps_the_events_so_metrics_do_not_change(jane, status_model):
    filters = MetricFilters(as_of=AS_OF)
    revenue = historical_clv_compute(filters=filters)
    funnel = funnel_compute(model=status_model, filters=filters)

    customer_erase(customer=jane, actor=None, reason="test")

    assert historical_clv_compute(filters=filters) == revenue
    assert funnel_compute(model=status_model, filters=filters) == funnel
    assert revenue["totals"]["revenue"] == 90.0  # the erased customer's 70.00 and the neighbour's 20.00
    assert Order.objects.filter(customer=jane).count() == 2


def test_erasing_twice_is_harmless(jane, admin_key):
    first = admin_key.post("/api/v1/customers/jane-1/erase/", {"reason": "first"}, format="json").json()
    # A batch in flight with the old id may still attach personal data: erasing again clears it.
    Touchpoint.objects.filter(customer=jane).update(properties={"late": "jane"})

    again = admin_key.post(f"/api/v1/customers/{first['external_id']}/erase/", {"reason": "again"}, format="json")

    assert again.status_code == 200
    second = again.json()
    assert (second["external_id"], second["erased_at"]) == (first["external_id"], first["erased_at"])
    assert second["already_erased"] is True
    assert second["cleared"] == {"touchpoints": 1, "feedback": 0, "consent_changes": 0, "history_records": 0}
    assert second["kept"] == first["kept"]
    assert Touchpoint.objects.get(customer=jane).properties == {}
    # The old id is gone for good.
    assert admin_key.post("/api/v1/customers/jane-1/erase/", {"reason": "x"}, format="json").status_code == 404


def test_sending_the_old_external_id_again_creates_a_new_customer(jane, writer):
    customer_erase(customer=jane, actor=None, reason="test")

    order = {"external_id": "o-new-1", "customer_external_id": "jane-1", "placed_at": "2024-05-01", "amount": "5.00"}
    # The old id is unknown now, as for any new customer.
    assert writer.post("/api/v1/orders/", order, format="json").status_code == 400

    created = writer.post("/api/v1/customers/", {"external_id": "jane-1", "email": EMAIL}, format="json")
    assert created.status_code == 201, created.content
    assert writer.post("/api/v1/orders/", order, format="json").status_code == 201

    new = Customer.objects.get(external_id="jane-1")
    assert new.pk != jane.pk and new.erased_at is None
    assert list(new.orders.values_list("external_id", flat=True)) == ["o-new-1"]
    assert Order.objects.filter(customer=jane).count() == 2 and Customer.objects.get(pk=jane.pk).email == ""


def test_erasure_is_recorded_with_who_when_and_why(jane, admin_key):
    admin_key.post("/api/v1/customers/jane-1/erase/", {"reason": "GDPR ticket 4711"}, format="json")

    record = Customer.history.filter(id=jane.pk).latest()
    assert record.history_user is None  # an API key is no user: named in the reason
    assert record.history_change_reason.startswith("personal data erased: GDPR ticket 4711 (by api-key:")
    assert record.history_date - Customer.objects.get(pk=jane.pk).erased_at < timedelta(seconds=1)


# --- API access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scopes", [("read",), ("write",), ("read", "write")])
def test_keys_without_the_admin_scope_are_refused(jane, scopes):
    client = key_client(*scopes)

    assert client.get("/api/v1/customers/jane-1/export/").status_code == 403
    assert client.post("/api/v1/customers/jane-1/erase/", {"reason": "x"}, format="json").status_code == 403
    assert Customer.objects.get(pk=jane.pk).erased_at is None


def test_anonymous_callers_get_401(jane, api_client):
    assert api_client.get("/api/v1/customers/jane-1/export/").status_code == 401
    assert api_client.post("/api/v1/customers/jane-1/erase/", {"reason": "x"}, format="json").status_code == 401


def test_people_need_the_admin_role(jane, client):
    client.force_login(user_with_role("mark", "marketer"))
    assert client.get("/api/v1/customers/jane-1/export/").status_code == 403
    client.force_login(user_with_role("ada", "admin"))
    assert client.get("/api/v1/customers/jane-1/export/").status_code == 200


@pytest.mark.parametrize("external_id", ["nobody", "%E2%80%AEevil", "x" * 300, "emoji-%F0%9F%98%80", "nul-%00"])
def test_unknown_customers_get_404(admin_key, external_id):
    assert admin_key.get(f"/api/v1/customers/{external_id}/export/").status_code == 404
    response = admin_key.post(f"/api/v1/customers/{external_id}/erase/", {"reason": "x"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x" * 51}, [], {"reason": None}])
def test_an_erasure_needs_a_reason(jane, admin_key, body):
    response = admin_key.post("/api/v1/customers/jane-1/erase/", body, format="json")
    assert response.status_code == 400
    assert Customer.objects.get(pk=jane.pk).erased_at is None


def test_the_schema_documents_both_operations(admin_key):
    schema = admin_key.get("/api/v1/schema/?format=json").json()
    assert schema["paths"]["/api/v1/customers/{external_id}/export/"]["get"]["operationId"] == "customer_data_export"
    assert schema["paths"]["/api/v1/customers/{external_id}/erase/"]["post"]["operationId"] == "customer_erase"


# --- admin ----------------------------------------------------------------------------------------


def test_admins_download_the_export_and_erase_after_confirming(jane, client):
    client.force_login(user_with_role("ada", "admin"))
    change = client.get(reverse("admin:lifecycle_customer_change", args=[jane.pk]))
    assert "Export data (JSON)" in change.text and "Erase personal data" in change.text

    download = client.get(reverse("admin:lifecycle_customer_export", args=[jane.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="customer-{jane.pk}.json"'
    assert json.loads(download.content)["customer"]["email"] == EMAIL

    erase_url = reverse("admin:lifecycle_customer_erase", args=[jane.pk])
    assert "cannot be undone" in client.get(erase_url).text
    unconfirmed = client.post(erase_url, {"reason": "ticket 12"})
    assert unconfirmed.status_code == 200 and Customer.objects.get(pk=jane.pk).erased_at is None

    done = client.post(erase_url, {"reason": "ticket 12", "confirm": "on"})

    assert done.status_code == 302
    assert Customer.objects.get(pk=jane.pk).email == ""


def test_the_erasure_shows_in_the_customers_admin_history(jane, client):
    ada = user_with_role("ada", "admin")
    customer_erase(customer=jane, actor=ada, reason="ticket 12")
    client.force_login(ada)

    history = client.get(reverse("admin:lifecycle_customer_history", args=[jane.pk]))

    assert history.status_code == 200
    assert "personal data erased: ticket 12" in history.text and "ada" in history.text


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_other_roles_can_neither_export_nor_erase_in_the_admin(jane, client, role):
    user = user_with_role("someone", role)
    client.force_login(user)
    change = client.get(reverse("admin:lifecycle_customer_change", args=[jane.pk]))
    assert change.status_code == 200 and "Erase personal data" not in change.text

    assert client.get(reverse("admin:lifecycle_customer_export", args=[jane.pk])).status_code == 403
    erase_url = reverse("admin:lifecycle_customer_erase", args=[jane.pk])
    assert client.post(erase_url, {"reason": "x", "confirm": "on"}).status_code == 403
    assert Customer.objects.get(pk=jane.pk).erased_at is None
    assert not Customer.history.filter(id=jane.pk, history_change_reason="personal data exported").exists()


def test_the_admin_log_entry_of_a_customer_is_anonymised_too(jane):
    LogEntry.objects.create(
        user=user_with_role("ada", "admin"),
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(jane.pk),
        object_repr="jane-1",
        action_flag=CHANGE,
        change_message="[]",
    )

    erasure = customer_erase(customer=jane, actor=None, reason="test")

    assert LogEntry.objects.get(object_id=str(jane.pk)).object_repr == erasure.external_id
