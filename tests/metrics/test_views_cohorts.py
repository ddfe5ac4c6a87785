"""Cohorts, value and journey pages: every number on the page is the metric's, bad input shows a message."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from clm.base.days import day_end
from lifecycle.models import Channel, Customer, LifecycleModel
from lifecycle.selectors import customer_current_stages
from lifecycle.services import model_reclassify
from metrics.activity import activity_compute
from metrics.cac import cac_compute
from metrics.cohorts import cohort_retention_compute, historical_clv_compute
from metrics.filters import MetricFilters
from metrics.models import ClvFit, CustomerValue
from metrics.rfm import rfm_compute
from metrics.value import clv_accuracy
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, TouchpointFactory, at
from tests.language import german

pytestmark = pytest.mark.django_db

AS_OF = "2024-03-31"
FILTERS = MetricFilters(as_of=day_end(date(2024, 3, 31)))
MAX_PAGE_QUERIES = 16  # session, user, models, channels of the filter form, a few snapshots: not per customer


@pytest.fixture
def history() -> LifecycleModel:
    """ada orders in January and February, bob and dee in January only, cyd never."""
    email = Channel.objects.get(key="email")
    customers = {
        name: CustomerFactory(
            external_id=name, email=f"{name}@example.com", first_seen_at=at("2024-01-01", 0), acquisition_channel=email
        )
        for name in ("ada", "bob", "cyd", "dee")
    }
    OrderFactory(customer=customers["ada"], placed_at=at("2024-01-10"), amount=Decimal("30"))
    OrderFactory(customer=customers["ada"], placed_at=at("2024-02-15"), amount=Decimal("50"))
    OrderFactory(customer=customers["bob"], placed_at=at("2024-01-20"))
    OrderFactory(customer=customers["dee"], placed_at=at("2024-01-05"))
    TouchpointFactory(customer=customers["ada"], occurred_at=at("2024-01-08"))
    FeedbackFactory(customer=customers["ada"], submitted_at=at("2024-02-20"), score=10, comment="great")
    model = LifecycleModel.objects.get(key="status")
    for day in ("2024-01-01", "2024-01-31", "2024-03-01"):
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))
    return model


def fitted_values() -> ClvFit:
    """A hand-made fit: ada and bob at risk (p_alive < 0.5), dee not."""
    fit = ClvFit.objects.create(
        as_of=at("2024-03-31"),
        fitted_at=timezone.now(),
        customers=3,
        repeat_customers=1,
        r=0.2,
        alpha=4,
        a=0.8,
        b=2.4,
        log_likelihood=-10,
    )
    for name, p_alive, spend in (("ada", 0.2, 12.5), ("bob", 0.4, 30.0), ("dee", 0.9, 40.0)):
        CustomerValue.objects.create(
            customer=Customer.objects.get(external_id=name),
            fit=fit,
            frequency=1 if name == "ada" else 0,
            recency_weeks=5,
            age_weeks=12,
            monetary_value=50,
            p_alive=p_alive,
            expected_purchases_90d=0.1,
            expected_purchases_365d=0.4,
            expected_spend_90d=spend / 4,
            expected_spend_365d=spend,
        )
    return fit


# --- cohorts -----------------------------------------------------------------------------------------


def test_the_cohort_heatmap_shows_the_retention_matrix(viewer_client, history, django_assert_max_num_queries):
    viewer_client.get("/cohorts/", {"as_of": AS_OF})  # computes and stores the snapshots
    with django_assert_max_num_queries(MAX_PAGE_QUERIES):
        response = viewer_client.get("/cohorts/", {"as_of": AS_OF})
    assert response.status_code == 200
    expected = cohort_retention_compute(filters=FILTERS, measure="share")
    january = response.context["cohort_rows"][0]
    assert january["cohort"] == "2024-01" and january["size"] == expected["cohorts"][0]["size"] == 3
    assert [cell["value"] for cell in january["cells"]] == expected["cohorts"][0]["values"][:3] == [1.0, 0.3333, 0.0]
    page = response.content.decode()
    assert "33.3 %" in page and "cohort=2024-01&amp;month=1" in page
    channels = {str(row["label"]): row for row in response.context["channel_rows"]}
    assert [cell["value"] for cell in channels["email"]["cells"]] == expected["by_channel"][0]["values"][:3]
    assert 'id="cohorts-data"' in page and "Data as of 2024-03-31" in page


def test_months_not_observable_yet_are_marked(viewer_client, history):
    OrderFactory(customer=CustomerFactory(external_id="eve"), placed_at=at("2024-03-05"))
    response = viewer_client.get("/cohorts/", {"as_of": AS_OF})
    march = response.context["cohort_rows"][-1]
    assert march["cohort"] == "2024-03" and [cell["value"] for cell in march["cells"]] == [1.0, None, None]
    # March's months 1 and 2, and the same in the row of eve's channel (none)
    assert response.content.decode().count('title="not observable yet"') == 4


def test_the_revenue_heatmap_is_cumulative_revenue_per_customer(viewer_client, history):
    response = viewer_client.get("/cohorts/", {"as_of": AS_OF, "measure": "revenue"})
    values = [cell["value"] for cell in response.context["cohort_rows"][0]["cells"]]
    assert values == cohort_retention_compute(filters=FILTERS, measure="revenue")["cohorts"][0]["values"][:3]
    assert values == [23.33, 40.0, 40.0]
    assert "23.33" in response.content.decode()


def test_activity_and_rfm_numbers_are_the_metrics(viewer_client, history):
    response = viewer_client.get("/cohorts/", {"as_of": AS_OF, "interval": "month"})
    expected = activity_compute(filters=FILTERS, interval="month")
    assert response.context["periods"] == expected["periods"]
    assert [(p["new"], p["returning"], p["dormant"]) for p in expected["periods"]] == [
        (3, 0, 0),
        (0, 1, -2),
        (0, 0, -1),
    ]
    assert response.context["chart"]["activity"]["dormant"] == [0, -2, -1]
    rfm = rfm_compute(filters=FILTERS)
    shown = {segment["key"]: segment["customers"] for segment in response.context["segments"]}
    assert shown == {segment["key"]: segment["customers"] for segment in rfm["segments"]}
    assert sum(shown.values()) == 3
    page = response.content.decode()
    assert "/api/v1/metrics/rfm/customers/?as_of=2024-03-31&amp;export=csv&amp;segment=" in page
    movement = response.context["movement"]
    assert movement is not None and sum(row["total"] for row in response.context["movement_rows"]) == 3


def test_a_cohort_cell_links_to_its_customers(viewer_client, history):
    response = viewer_client.get("/cohorts/customers/", {"as_of": AS_OF, "cohort": "2024-01", "month": "1"})
    assert response.status_code == 200
    assert [customer.external_id for customer in response.context["page_obj"]] == ["ada"]
    assert response.context["export_url"].startswith("/api/v1/metrics/cohorts/customers/?as_of=2024-03-31")
    assert "cohort=2024-01" in response.context["export_url"] and "export=csv" in response.context["export_url"]
    everyone = viewer_client.get("/cohorts/customers/", {"as_of": AS_OF, "cohort": "2024-01", "month": "0"})
    assert [customer.external_id for customer in everyone.context["page_obj"]] == ["ada", "bob", "dee"]
    assert 'href="/customers/ada/"' in everyone.content.decode()


@pytest.mark.parametrize(
    "params",
    [{"cohort": "2024-13", "month": "0"}, {"cohort": "2024-01", "month": "x"}, {"cohort": "2024-01", "month": "24"}],
)
def test_a_malformed_cohort_cell_is_404(viewer_client, history, params):
    assert viewer_client.get("/cohorts/customers/", params).status_code == 404


# --- value -------------------------------------------------------------------------------------------


def test_the_value_page_shows_clv_and_cac(viewer_client, history, django_assert_max_num_queries):
    fitted_values()
    viewer_client.get("/value/", {"as_of": AS_OF, "calibration_end": "2024-01-15"})
    with django_assert_max_num_queries(MAX_PAGE_QUERIES + 4):  # + the at-risk page and its count, the fit, search
        response = viewer_client.get("/value/", {"as_of": AS_OF, "calibration_end": "2024-01-15"})
    assert response.status_code == 200
    assert response.context["historical"] == historical_clv_compute(filters=FILTERS)
    january = response.context["historical"]["by_cohort"][0]
    assert (january["customers"], january["revenue"], january["revenue_per_customer"]) == (3, 120.0, 40.0)
    assert january["predicted_clv_365d"] == round((12.5 + 30 + 40) / 3, 2)
    assert response.context["cac"] == cac_compute(filters=FILTERS)
    page = response.content.decode()
    assert "40.00" in page and "27.50" in page and 'id="value-data"' in page


def test_at_risk_lists_low_p_alive_customers_by_revenue(viewer_client, history):
    fitted_values()
    response = viewer_client.get("/value/", {"as_of": AS_OF})
    rows = list(response.context["at_risk"])
    assert [(row["external_id"], row["revenue"]) for row in rows] == [("ada", Decimal("80")), ("bob", Decimal("20"))]
    assert 'href="/customers/ada/"' in response.content.decode()


def test_before_a_fit_the_value_page_says_so(viewer_client, history):
    response = viewer_client.get("/value/", {"as_of": AS_OF})
    assert response.status_code == 200
    assert "has not been fitted yet" in response.content.decode()


def test_clv_accuracy_that_cannot_be_computed_is_a_message(viewer_client, history):
    response = viewer_client.get("/value/", {"as_of": AS_OF, "calibration_end": "2023-06-01"})
    assert response.status_code == 200
    assert (
        response.context["accuracy"] is None
        and "No customer has a completed order" in response.context["accuracy_error"]
    )
    assert 'role="alert"' in response.content.decode()


def test_the_default_calibration_end_halves_the_order_history(viewer_client, history):
    response = viewer_client.get("/value/", {"as_of": AS_OF})
    # first order 2024-01-05 12:00, last 2024-02-15 12:00: the midpoint is 2024-01-26 00:00
    assert response.context["calibration_end"].isoformat() == "2024-01-26"
    assert response.context["accuracy"] is not None or response.context["accuracy_error"]


def test_searching_a_customer_goes_to_the_journey(viewer_client, history):
    assert viewer_client.get("/value/", {"q": "ada"})["Location"] == "/customers/ada/"
    assert viewer_client.get("/value/", {"q": "dee@example"})["Location"] == "/customers/dee/"
    several = viewer_client.get("/value/", {"q": "example.com"})
    assert [customer.external_id for customer in several.context["matches"]] == ["ada", "bob", "cyd", "dee"]
    nobody = viewer_client.get("/value/", {"q": "zed"})
    assert nobody.context["matches"] == [] and "No customer matches" in nobody.content.decode()


# --- journey -----------------------------------------------------------------------------------------


def test_the_journey_shows_every_event_and_the_current_stages(viewer_client, history, django_assert_max_num_queries):
    fitted_values()
    with django_assert_max_num_queries(MAX_PAGE_QUERIES + 6):  # customer, four event kinds, stages, features, value
        response = viewer_client.get("/customers/ada/")
    assert response.status_code == 200
    kinds = [event["kind"] for event in response.context["events"]]
    assert kinds.count("order") == 2 and kinds.count("touchpoint") == 1 and kinds.count("feedback") == 1
    assert kinds.count("transition") >= 2
    moments = [event["at"] for event in response.context["events"]]
    assert moments == sorted(moments, reverse=True)
    ada = Customer.objects.get(external_id="ada")
    assert response.context["stages"] == customer_current_stages(customer=ada)
    page = response.content.decode()
    assert "great" in page and "80.00" in page and "20.0 %" in page and "12.50" in page
    assert response.context["features"]["order_count"] == 2
    assert sum(response.context["chart"]["order"]) == 2


def test_the_journey_without_a_fit_says_so(viewer_client, history):
    response = viewer_client.get("/customers/cyd/")
    assert response.status_code == 200
    assert "has not been fitted yet" in response.content.decode()


def test_an_unknown_customer_is_404(viewer_client, history):
    assert viewer_client.get("/customers/nobody/").status_code == 404


# --- bad input, login ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/cohorts/", {"as_of": "2024-02-30"}),
        ("/cohorts/", {"cohort_start": "2024-03-01", "cohort_end": "2024-01-01"}),
        ("/cohorts/", {"measure": "profit"}),
        ("/cohorts/", {"as_of": AS_OF, "movement_start": "2024-04-01"}),
        ("/value/", {"as_of": "yesterday"}),
        ("/value/", {"calibration_end": "2999-01-01"}),
        ("/value/", {"channel": "pigeon"}),
    ],
)
def test_bad_filters_show_a_message_not_an_error(viewer_client, history, url, params):
    response = viewer_client.get(url, params)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


@pytest.mark.parametrize(
    "url", ["/cohorts/", "/cohorts/customers/?cohort=2024-01&month=0", "/value/", "/customers/ada/"]
)
def test_pages_need_a_login(client, history, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_clv_accuracy_shows_predicted_and_actual_per_cohort(viewer_client, db):
    """40 customers with 0 to 4 repeat purchases at varied gaps: enough for a BG/NBD fit."""
    for n in range(40):
        customer = CustomerFactory(external_id=f"k{n}", first_seen_at=at("2023-01-01", 0))
        first = datetime(2023, 1 + n % 6, 1 + n % 27, 12, tzinfo=UTC)
        OrderFactory(customer=customer, placed_at=first)
        for repeat in range(n % 5):
            OrderFactory(customer=customer, placed_at=first + (repeat + 1) * (n % 7 + 2) * timedelta(days=9))
    response = viewer_client.get("/value/", {"as_of": "2024-06-30", "calibration_end": "2023-07-31"})
    expected = clv_accuracy(calibration_end=day_end(date(2023, 7, 31)))
    assert response.context["accuracy_error"] is None, response.context["accuracy_error"]
    shown = response.context["accuracy"]
    assert shown["total"] == expected["total"] and shown["cohorts"] == expected["cohorts"]
    assert response.context["chart"]["accuracy"]["actual"] == [point["actual"] for point in expected["weekly"]]
    page = response.content.decode()
    assert f"{expected['total']['predicted']:.2f}" in page and 'id="accuracy-table"' in page


# --- German --------------------------------------------------------------------------------------------


@pytest.fixture
def german_viewer(viewer_client):
    with german(viewer_client) as client:
        yield client


def test_why_the_accuracy_cannot_be_computed_is_german_on_the_german_page(german_viewer, history):
    # The last order is on 2024-02-15: a calibration end after it leaves nothing to compare with.
    response = german_viewer.get("/value/", {"as_of": AS_OF, "calibration_end": "2024-02-20"})
    assert response.status_code == 200
    assert response.context["accuracy_error"] == (
        "Der Holdout-Zeitraum ist leer: Die letzte Bestellung (2024-02-15) liegt nicht nach dem Kalibrierungsende "
        "(2024-02-20); bitte ein früheres Kalibrierungsende wählen."
    )
    assert "Der Holdout-Zeitraum ist leer" in response.content.decode()
    too_early = german_viewer.get("/value/", {"as_of": AS_OF, "calibration_end": "2023-06-01"})
    assert "Noch kein Kunde hat eine abgeschlossene Bestellung" in too_early.content.decode()


def test_bad_filters_are_explained_in_german(german_viewer, history):
    response = german_viewer.get(
        "/value/", {"cohort_start": "2024-03-01", "cohort_end": "2024-01-01", "channel": "pigeon"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Das Ende des Zeitraums liegt vor seinem Beginn." in page
    assert "Bitte eine gültige Auswahl treffen." in page  # the unknown channel, in Django's own German
    assert ">E-Mail</option>" in page  # the channels by their German names
