"""Marketing consent (issue 16 item 5): stored on the customer by every write path, its changes logged, shown by
the customer API and the personal-data export, and respected by the stage export (docs/CAMPAIGNS.md)."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lifecycle.ingest import records_ingest
from lifecycle.ingest_kinds import CUSTOMERS
from lifecycle.models import ConsentChange, Customer, CustomerStage, LifecycleModel, Stage
from lifecycle.privacy import customer_data_export, customer_erase
from tests.factories import CustomerFactory, at

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
EXPORT = "/api/v1/models/status/stages/new/export.csv"


def post(client, kind: str, payload):
    return client.post(f"/api/v1/{kind}/", data=json.dumps(payload), content_type="application/json")


def changes(customer: str = "c-1") -> list[tuple]:
    return list(
        ConsentChange.objects.filter(customer__external_id=customer).values_list(
            "channel", "from_state", "to_state", "at", "source"
        )
    )


def subscribed(at_: str = "2025-03-01T10:00:00Z", source: str = "checkout", **fields) -> dict:
    return {"email_consent": "subscribed", "email_consent_at": at_, "email_consent_source": source, **fields}


@pytest.fixture
def c1(writer) -> Customer:
    assert post(writer, "customers", {"external_id": "c-1", "email": "ada@example.com"}).status_code == 201
    return Customer.objects.get(external_id="c-1")


# --- the change log -------------------------------------------------------------------------------


def test_an_ingest_changing_consent_records_one_change_with_from_to_at_and_source(writer, c1):
    with time_machine.travel(NOW, tick=False):
        response = post(writer, "customers", {"external_id": "c-1", **subscribed()})

    assert response.status_code == 200  # nothing created
    customer = Customer.objects.get(pk=c1.pk)
    assert (customer.email_consent, customer.email_consent_at, customer.email_consent_source) == (
        "subscribed",
        at("2025-03-01", 10),
        "checkout",
    )
    assert changes() == [("email", "not_subscribed", "subscribed", at("2025-03-01", 10), "checkout")]
    assert ConsentChange.objects.get().recorded_at == NOW


def test_resending_the_same_batch_records_nothing_more(writer, c1):
    batch = [{"external_id": "c-1", **subscribed(sms_consent="unsubscribed")}]
    post(writer, "customers", batch)

    response = post(writer, "customers", batch)

    assert response.json()["unchanged"] == 1
    assert sorted(changes()) == [
        ("email", "not_subscribed", "subscribed", at("2025-03-01", 10), "checkout"),
        ("sms", "not_subscribed", "unsubscribed", None, ""),
    ]


def test_a_withdrawal_is_logged_after_the_consent(writer, c1):
    post(writer, "customers", {"external_id": "c-1", **subscribed()})
    post(writer, "customers", {"external_id": "c-1", "email_consent": "unsubscribed"})

    assert [(change[1], change[2]) for change in changes()] == [
        ("not_subscribed", "subscribed"),
        ("subscribed", "unsubscribed"),
    ]
    assert Customer.objects.get(pk=c1.pk).email_consent == "unsubscribed"


def test_not_subscribed_never_overwrites_an_unsubscription_but_a_new_subscription_does(writer, c1):
    post(writer, "customers", {"external_id": "c-1", "email_consent": "unsubscribed", "email_consent_source": "mail"})

    # What a shop's CSV export says of someone who opted out: "no", read as not subscribed.
    response = post(writer, "customers", {"external_id": "c-1", "email_consent": "not_subscribed", "name": "Ada"})

    assert response.json()["updated"] == 1  # the name
    customer = Customer.objects.get(pk=c1.pk)
    assert (customer.email_consent, customer.email_consent_source, customer.name) == ("unsubscribed", "mail", "Ada")
    assert [change[2] for change in changes()] == ["unsubscribed"]

    post(writer, "customers", {"external_id": "c-1", **subscribed()})
    assert Customer.objects.get(pk=c1.pk).email_consent == "subscribed"
    assert [change[2] for change in changes()] == ["unsubscribed", "subscribed"]


def test_a_new_customer_logs_the_consent_it_arrives_with_but_not_the_default(writer):
    post(
        writer,
        "customers",
        [{"external_id": "c-1", **subscribed()}, {"external_id": "c-2", "sms_consent": "not_subscribed"}],
    )

    assert changes("c-1") == [("email", "", "subscribed", at("2025-03-01", 10), "checkout")]
    assert changes("c-2") == []


def test_an_update_older_than_the_stored_one_leaves_consent_unchanged(writer, c1):
    post(writer, "customers", {"external_id": "c-1", **subscribed(source_updated_at="2025-03-02T00:00:00Z")})

    response = post(
        writer,
        "customers",
        {"external_id": "c-1", "email_consent": "unsubscribed", "source_updated_at": "2025-03-01T23:59:00Z"},
    )

    assert response.json()["unchanged"] == 1
    assert Customer.objects.get(pk=c1.pk).email_consent == "subscribed"
    assert len(changes()) == 1


def test_a_csv_import_logs_consent_changes_too(tmp_path, c1):
    path = tmp_path / "customers.csv"
    path.write_text(
        "external_id,email_consent,email_consent_at,email_consent_source\nc-1,subscribed,2025-03-01,newsletter form\n"
    )

    call_command("import_csv", "customers", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert changes() == [("email", "not_subscribed", "subscribed", at("2025-03-01", 0), "newsletter form")]


def test_logging_consent_changes_costs_the_same_queries_for_2_or_200_customers(db):
    def queries(count: int) -> int:
        records_ingest(kind=CUSTOMERS, items=[{"external_id": f"q{count}-{n}"} for n in range(count)])
        batch = [{"external_id": f"q{count}-{n}", **subscribed()} for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            records_ingest(kind=CUSTOMERS, items=batch)
        return len(captured)

    assert queries(2) == queries(200)
    assert ConsentChange.objects.count() == 202


def test_an_admin_edit_of_consent_is_logged(client, c1):
    user = User.objects.create_user("ada", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client.force_login(user)
    url = reverse("admin:lifecycle_customer_change", args=[c1.pk])
    page = client.get(url)

    response = client.post(url, admin_form_data(page, sms_consent="subscribed", sms_consent_source="phone call"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert changes() == [("sms", "not_subscribed", "subscribed", None, "phone call")]
    assert "phone call" in client.get(url).text  # the change form lists the customer's consent log


def admin_form_data(page, **changed) -> dict:
    """The POST data of the admin change form as rendered, with `changed` fields set."""
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = changed.get(name, form[name].value())
        if hasattr(field.widget, "widgets"):  # a date and a time
            data.update({f"{name}_{i}": part or "" for i, part in enumerate(field.widget.decompress(value))})
        elif value is not None:
            data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
    return data


# --- reading it back ------------------------------------------------------------------------------


def test_the_customer_api_shows_consent_per_channel(writer, reader, c1):
    post(writer, "customers", {"external_id": "c-1", **subscribed()})

    detail = reader.get("/api/v1/customers/c-1/").json()
    listed = reader.get("/api/v1/customers/").json()["results"][0]

    expected = {
        "email_consent": "subscribed",
        "email_consent_at": "2025-03-01T10:00:00Z",
        "email_consent_source": "checkout",
        "sms_consent": "not_subscribed",
        "sms_consent_at": None,
        "sms_consent_source": "",
    }
    assert {name: detail[name] for name in expected} == expected
    assert {name: listed[name] for name in expected} == expected


def test_the_personal_data_export_lists_consent_changes_and_erasure_clears_their_source(writer, c1):
    post(writer, "customers", {"external_id": "c-1", **subscribed(source="form at ada-roe.example")})

    data = customer_data_export(customer=c1, actor=None)

    assert data["customer"]["email_consent"] == "subscribed"
    assert data["customer"]["email_consent_source"] == "form at ada-roe.example"
    [change] = data["consent_changes"]
    assert {name: change[name] for name in ("channel", "from", "to", "at", "source")} == {
        "channel": "email",
        "from": "not_subscribed",
        "to": "subscribed",
        "at": "2025-03-01T10:00:00Z",
        "source": "form at ada-roe.example",
    }

    erasure = customer_erase(customer=c1, actor=None, reason="ticket 7")

    assert erasure.cleared["consent_changes"] == 1
    assert ConsentChange.objects.get().source == ""
    customer = Customer.objects.get(pk=c1.pk)
    assert (customer.email_consent, customer.email_consent_source) == ("subscribed", "")
    assert not Customer.history.filter(id=c1.pk).exclude(email_consent_source="").exists()


# --- exports --------------------------------------------------------------------------------------


@pytest.fixture
def stage_new(db) -> Stage:
    """In stage `new`: c1 subscribed to email, c2 to SMS only, c3 unsubscribed, c4 pending."""
    model = LifecycleModel.objects.get(key="status")
    stage = Stage.objects.get(model=model, key="new")
    for external_id, email, sms in [
        ("c1", "subscribed", "not_subscribed"),
        ("c2", "not_subscribed", "subscribed"),
        ("c3", "unsubscribed", "unsubscribed"),
        ("c4", "pending", "not_subscribed"),
    ]:
        customer = CustomerFactory(external_id=external_id, email_consent=email, sms_consent=sms)
        CustomerStage.objects.create(model=model, customer=customer, stage=stage, since=at("2025-03-01"))
    return stage


def exported(response) -> tuple[str, list[list[str]]]:
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    return response["Content-Disposition"], rows


def test_the_export_sends_only_customers_subscribed_to_email_and_says_so(reader, stage_new):
    disposition, rows = exported(reader.get(EXPORT))

    assert disposition == 'attachment; filename="status-new-email-consented.csv"'
    assert rows[0][-2:] == ["email_consent", "sms_consent"]
    assert [(row[0], row[-2]) for row in rows[1:]] == [("c1", "subscribed")]


def test_the_export_for_sms_sends_those_subscribed_to_sms(reader, stage_new):
    disposition, rows = exported(reader.get(EXPORT, {"consent": "sms"}))

    assert disposition == 'attachment; filename="status-new-sms-consented.csv"'
    assert [row[0] for row in rows[1:]] == ["c2"]


def test_the_export_regardless_of_consent_sends_everyone_and_says_so(reader, stage_new):
    disposition, rows = exported(reader.get(EXPORT, {"consent": "any"}))

    assert disposition == 'attachment; filename="status-new-regardless-of-consent.csv"'
    assert [(row[0], row[-2], row[-1]) for row in rows[1:]] == [
        ("c1", "subscribed", "not_subscribed"),
        ("c2", "not_subscribed", "subscribed"),
        ("c3", "unsubscribed", "unsubscribed"),
        ("c4", "pending", "not_subscribed"),
    ]


def test_an_unknown_consent_channel_is_refused_naming_the_parameter(reader, stage_new):
    response = reader.get(EXPORT, {"consent": "fax"})

    assert response.status_code == 400
    assert "consent" in {error["field"] for error in response.json()["errors"]}


def test_the_stage_page_offers_both_exports(viewer_client, stage_new):
    page = viewer_client.get("/models/status/stages/new/").text

    assert f'href="{EXPORT}"' in page and f'href="{EXPORT}?consent=any"' in page
    assert "customers who agreed to email marketing" in page
