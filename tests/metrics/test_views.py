"""Dashboard pages: every number on the page is the selector's, bad filters show a message, roles and 404s."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lifecycle.models import Channel, LifecycleModel
from lifecycle.services import model_reclassify
from tests.factories import CustomerFactory, OrderFactory, at
from tests.language import german

pytestmark = pytest.mark.django_db

AS_OF = "2024-03-31"
MAX_PAGE_QUERIES = 14  # session, user and groups, models for the selector, snapshot: independent of customers


@pytest.fixture
def history() -> LifecycleModel:
    """ada orders twice (active), bob and dee once (new), cyd never (prospect)."""
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
    model = LifecycleModel.objects.get(key="status")
    for day in ("2024-01-01", "2024-01-31", "2024-03-01"):
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))
    return model


def test_the_funnel_page_shows_the_funnel_numbers_and_flags(viewer_client, history, django_assert_max_num_queries):
    viewer_client.get("/models/status/funnel/", {"as_of": AS_OF})  # computes and stores the snapshot
    with django_assert_max_num_queries(MAX_PAGE_QUERIES):
        response = viewer_client.get("/models/status/funnel/", {"as_of": AS_OF})
    assert response.status_code == 200
    page = response.content.decode()
    steps = {step["stage"]: step for step in response.context["result"]["steps"]}
    assert [steps[key]["reached"] for key in ("prospect", "new", "active")] == [4, 3, 1]
    assert ">4</a>" in page and ">3</a>" in page and "biggest drop-off" in page
    assert 'id="funnel-data"' in page and "Data as of 2024-03-31" in page


def test_funnel_drops_link_to_the_customers_behind_them(viewer_client, history):
    response = viewer_client.get(
        "/models/status/funnel/customers/", {"as_of": AS_OF, "stage": "new", "outcome": "dropped"}
    )
    assert response.status_code == 200
    assert [customer.external_id for customer in response.context["page_obj"]] == ["bob", "dee"]
    assert "outcome=dropped" in response.context["export_url"] and "export=csv" in response.context["export_url"]
    searched = viewer_client.get(
        "/models/status/funnel/customers/", {"as_of": AS_OF, "stage": "new", "outcome": "dropped", "q": "dee@"}
    )
    assert [customer.external_id for customer in searched.context["page_obj"]] == ["dee"]


@pytest.mark.parametrize(
    "params",
    [{"as_of": "2024-02-30"}, {"cohort_start": "2024-03-01", "cohort_end": "2024-01-01"}, {"window_days": "0"}],
)
def test_bad_filters_show_a_message_not_an_error(viewer_client, history, params):
    response = viewer_client.get("/models/status/funnel/", params)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_unknown_models_and_stages_are_404(viewer_client, history):
    assert viewer_client.get("/models/nope/funnel/").status_code == 404
    assert viewer_client.get("/models/status/funnel/customers/", {"stage": "nope"}).status_code == 404
    assert viewer_client.get("/models/status/funnel/customers/", {"stage": "former"}).status_code == 404


def test_the_funnel_link_goes_to_the_default_model(viewer_client, history):
    response = viewer_client.get("/funnel/", {"as_of": AS_OF})
    assert response.status_code == 302 and response["Location"] == f"/models/status/funnel/?as_of={AS_OF}"


def test_pages_need_a_login(client, history):
    response = client.get("/models/status/funnel/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_funnel_page_speaks_german(viewer_client, history):
    with german(viewer_client):
        page = viewer_client.get("/models/status/funnel/", {"as_of": AS_OF}).content.decode()
    assert 'lang="de"' in page and "Trichter" in page and "Abmelden" in page
