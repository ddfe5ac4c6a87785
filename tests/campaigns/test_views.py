"""Campaigns pages: channel plan matrix (edit in place), campaigns, experiments — numbers from the services, roles,
validation shown inline with nothing saved, CSRF, 404s and bounded query counts."""

import html
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.campaigns.crud import campaign_create
from campaigns.campaigns.results import campaign_results
from campaigns.experiments.crud import experiment_create, experiment_get, experiment_start
from campaigns.experiments.results import experiment_results
from campaigns.models import Campaign, ChannelPlan, Experiment, ExperimentStatus, Exposure, MarketingSpend
from lifecycle.models import Customer, LifecycleModel, Order, Stage
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory, at, transitions_record
from tests.language import german
from tests.pages import stage, table_rows, user_client

pytestmark = pytest.mark.django_db

# Session, user, groups (the role), the model selector: then each page's own reads, none per customer.
MAX_LIST_QUERIES = 10  # … the campaigns or experiments with their relations (2)
MAX_CAMPAIGN_QUERIES = 16  # … the campaign (2) and its results (7)
MAX_EXPERIMENT_QUERIES = 10  # … the experiment with its variants (2) and the results (1)


# --- campaigns -------------------------------------------------------------------------------------------


@pytest.fixture
def campaign(status_model) -> Campaign:
    """Spring email: 100 spent; ann reached while new, advanced and bought with the code; bob bought after a touch."""
    campaign = campaign_create(
        code="spring-email",
        name="Spring email",
        channel="email",
        model="status",
        stages=["new"],
        start_date=date(2024, 3, 1),
        end_date=date(2024, 3, 31),
        budget=Decimal("500.00"),
    )
    MarketingSpend.objects.create(
        channel=campaign.channel, campaign_code="spring-email", period="day", date=date(2024, 3, 2), amount=100
    )
    ann, bob = CustomerFactory(external_id="ann"), CustomerFactory(external_id="bob")
    transitions_record(status_model, ann, [("new", "2024-02-01"), ("active", "2024-03-10")])
    for customer in (ann, bob):
        TouchpointFactory(customer=customer, campaign_code="spring-email", occurred_at=at("2024-03-05"))
    OrderFactory(customer=ann, placed_at=at("2024-03-10"), amount=Decimal("60.00"), campaign_code="spring-email")
    OrderFactory(customer=bob, placed_at=at("2024-03-12"), amount=Decimal("40.00"))
    return campaign


def test_the_campaign_list_shows_every_campaign_with_its_spend(viewer, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = viewer.get("/campaigns/")
    page = response.content.decode()
    assert response.status_code == 200 and "Spring email" in page and "100.00" in page and "500.00" in page
    assert "/campaigns/new/" not in page  # viewers get no create link


def test_the_campaign_page_shows_the_results(viewer, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_CAMPAIGN_QUERIES):
        response = viewer.get(f"/campaigns/{campaign.pk}/", {"as_of": "2024-06-30"})
    assert response.status_code == 200
    results = response.context["results"]
    expected = campaign_results(
        campaign=campaign, as_of=at("2024-06-30").replace(hour=23, minute=59, second=59, microsecond=999999)
    )
    assert results == expected
    assert results["reached"] == 2 and results["advancement"]["advanced"] == 1
    page = response.content.decode()
    assert "60.00" in page and "100.00" in page and 'id="campaign-data"' in page
    assert "spend-form" not in page  # no spend entry for viewers


def test_a_bad_as_of_date_shows_a_message(viewer, campaign):
    response = viewer.get(f"/campaigns/{campaign.pk}/", {"as_of": "2024-02-30"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()


def campaign_form(**overrides) -> dict:
    new = Stage.objects.get(model__key="status", key="new")
    return {
        "code": "winback",
        "name": "Win-back",
        "channel": "email",
        "model": "status",
        "stages": [str(new.pk)],
        "start_date": "2024-04-01",
        "end_date": "2024-04-30",
        "budget": "250.00",
        "status": "active",
        "attribution_days": "30",
        **overrides,
    }


def test_a_marketer_creates_a_campaign(marketer, status_model):
    assert marketer.get("/campaigns/new/").status_code == 200
    response = marketer.post("/campaigns/new/", campaign_form())
    campaign = Campaign.objects.get(code="winback")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
    assert [s.key for s in campaign.stages.all()] == ["new"] and campaign.budget == Decimal("250.00")


def test_a_campaign_form_with_errors_shows_them_and_saves_nothing(marketer, status_model):
    other = template_stage()
    response = marketer.post(
        "/campaigns/new/", campaign_form(end_date="2024-03-01", stages=[str(other.pk)], code=" spaced")
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"end_date", "stages", "code"} <= set(errors)
    assert 'class="errorlist"' in response.content.decode()
    assert not Campaign.objects.exists()


def template_stage() -> Stage:
    """A stage of another model than `status`."""
    from lifecycle.templates import template_install

    return template_install(key="ecommerce")[0].stages.order_by("position").first()


def test_a_marketer_edits_a_campaign_and_errors_change_nothing(marketer, campaign):
    page = marketer.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    assert 'value="spring-email"' in page
    bad = marketer.post(f"/campaigns/{campaign.pk}/edit/", campaign_form(code="spring-email", attribution_days="0"))
    assert bad.status_code == 400 and "attribution_days" in bad.context["form"].errors
    campaign.refresh_from_db()
    assert campaign.attribution_days == 30 and campaign.name == "Spring email"
    # Spend is recorded under the code: it can no longer change (the service says so, next to the field).
    renamed = marketer.post(f"/campaigns/{campaign.pk}/edit/", campaign_form(code="renamed"))
    assert renamed.status_code == 400 and "code" in renamed.context["form"].errors
    response = marketer.post(f"/campaigns/{campaign.pk}/edit/", campaign_form(code="spring-email", status="paused"))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.name, campaign.code) == ("paused", "Win-back", "spring-email")
    assert campaign.history.first().history_user.username == "mia"


def test_a_marketer_records_spend_on_the_campaign_page(marketer, campaign):
    url = f"/campaigns/{campaign.pk}/spend/"
    response = marketer.post(url, {"period": "month", "date": "2024-03-17", "amount": "400.00"}, follow=True)
    assert response.status_code == 200 and "Spend recorded." in response.content.decode()
    assert MarketingSpend.objects.get(campaign_code="spring-email", period="month").date == date(2024, 3, 1)
    future = (timezone.now().date() + timedelta(days=5)).isoformat()
    bad = marketer.post(url, {"period": "day", "date": future, "amount": "-1"})
    assert bad.status_code == 400 and {"date", "amount"} & set(bad.context["spend_form"].errors)
    assert MarketingSpend.objects.count() == 2


def test_viewers_cannot_change_campaigns(viewer, campaign):
    assert viewer.get("/campaigns/new/").status_code == 403
    assert viewer.post("/campaigns/new/", campaign_form()).status_code == 403
    assert viewer.post(f"/campaigns/{campaign.pk}/edit/", campaign_form(code="spring-email")).status_code == 403
    assert (
        viewer.post(
            f"/campaigns/{campaign.pk}/spend/", {"period": "day", "date": "2024-03-03", "amount": "1"}
        ).status_code
        == 403
    )
    assert Campaign.objects.count() == 1 and MarketingSpend.objects.count() == 1
    campaign.refresh_from_db()
    assert campaign.name == "Spring email"


def test_unknown_campaigns_are_404(marketer, status_model):
    assert marketer.get("/campaigns/999/").status_code == 404
    assert marketer.get("/campaigns/999/edit/").status_code == 404
    assert marketer.post("/campaigns/999/spend/", {}).status_code == 404


# --- experiments -----------------------------------------------------------------------------------------


def experiment(model: LifecycleModel, key: str = "banner") -> Experiment:
    return experiment_create(
        key=key,
        name="Checkout banner",
        model=model,
        stage=stage(model, "new"),
        goal="place_order",
        window_days=10,
        variants=[
            {"key": "control", "name": "No banner", "weight": 1, "is_control": True},
            {"key": "banner", "name": "Banner", "weight": 1},
        ],
    )


def cohort(exp: Experiment, variant_key: str, *, exposed: int, converted: int) -> None:
    variant = exp.variants.get(key=variant_key)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{variant_key}-{i}", first_seen_at=at("2024-01-01")) for i in range(exposed)
    )
    Exposure.objects.bulk_create(
        Exposure(experiment=exp, variant=variant, customer=c, exposed_at=at("2024-03-01")) for c in customers
    )
    Order.objects.bulk_create(
        Order(external_id=f"{variant_key}-o-{i}", customer=c, placed_at=at("2024-03-03"), amount=Decimal("20"))
        for i, c in enumerate(customers[:converted])
    )


def test_the_experiment_page_shows_uplift_with_its_interval(viewer, status_model, django_assert_max_num_queries):
    exp = experiment(status_model)
    experiment_start(experiment=exp, at=at("2024-02-28"))
    cohort(exp, "control", exposed=200, converted=20)
    cohort(exp, "banner", exposed=200, converted=36)
    with django_assert_max_num_queries(MAX_EXPERIMENT_QUERIES):
        response = viewer.get("/experiments/banner/")
    assert response.status_code == 200
    expected = experiment_results(experiment=experiment_get(key="banner"))
    banner = next(row for row in response.context["variants"] if row["key"] == "banner")
    absolute = next(row for row in expected["variants"] if row["key"] == "banner")["uplift"]["absolute"]
    assert banner["absolute_pts"] == pytest.approx({k: v * 100 for k, v in absolute.items()})
    chart = response.context["chart"]
    assert chart["labels"] == ["Banner"] and chart["interval"][0] == pytest.approx(
        [absolute["low"] * 100, absolute["high"] * 100]
    )
    page = response.content.decode()
    assert 'id="experiment-chart"' in page and 'id="experiment-data"' in page
    # Each number in its own cell: "8.00" alone would also be found inside "18.00 %".
    control, banner = table_rows(page, "experiment-results")
    assert control["Variant"].startswith("No banner") and banner["Variant"].startswith("Banner")
    assert (control["Conversion rate"], banner["Conversion rate"]) == ("10.00 %", "18.00 %")
    assert banner["Uplift vs control, points (95 % CI)"].startswith("8.00 [")  # the uplift in points, then its CI
    assert "Stop the experiment" not in page  # viewers get no buttons


def test_an_experiment_without_enough_data_says_so(viewer, status_model):
    experiment(status_model)
    response = viewer.get("/experiments/banner/")
    page = response.content.decode()
    assert response.status_code == 200 and "Not enough data" in page and 'id="experiment-chart"' not in page


def test_the_experiment_list_shows_each_experiment(viewer, status_model, django_assert_max_num_queries):
    experiment(status_model)
    experiment(status_model, key="second")
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = viewer.get("/experiments/")
    page = response.content.decode()
    assert response.status_code == 200 and "/experiments/banner/" in page and "/experiments/second/" in page


def experiment_form(**overrides) -> dict:
    new = Stage.objects.get(model__key="status", key="new")
    data = {
        "key": "welcome",
        "name": "Welcome coupon",
        "model": "status",
        "stage": str(new.pk),
        "goal": "place_order",
        "window_days": "30",
        "minimum_detectable_effect": "0.02",
        "power": "0.8",
        "alpha": "0.05",
        "variants-TOTAL_FORMS": "4",
        "variants-INITIAL_FORMS": "2",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "10",
        "variants-0-key": "control",
        "variants-0-name": "No coupon",
        "variants-0-weight": "1",
        "variants-0-is_control": "on",
        "variants-1-key": "coupon",
        "variants-1-name": "Coupon",
        "variants-1-weight": "1",
        "variants-2-weight": "1",
        "variants-3-weight": "1",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_a_marketer_creates_an_experiment(marketer, status_model):
    page = marketer.get("/experiments/new/").content.decode()
    assert 'name="variants-0-key"' in page and 'value="control"' in page
    response = marketer.post("/experiments/new/", experiment_form())
    assert response.status_code == 302 and response["Location"] == "/experiments/welcome/"
    created = experiment_get(key="welcome")
    assert [(v.key, v.is_control) for v in created.variants.all()] == [("control", True), ("coupon", False)]
    assert created.status == ExperimentStatus.DRAFT


def test_an_experiment_without_a_control_shows_the_error_and_saves_nothing(marketer, status_model):
    response = marketer.post("/experiments/new/", experiment_form(**{"variants-0-is_control": None}))
    assert response.status_code == 400
    assert any("control" in error for error in response.context["variant_errors"])
    assert 'id="variant-errors"' in response.content.decode()
    assert not Experiment.objects.exists()


def test_an_experiment_with_a_stage_of_another_model_shows_the_error(marketer, status_model):
    response = marketer.post("/experiments/new/", experiment_form(stage=str(template_stage().pk)))
    assert response.status_code == 400 and "stage" in response.context["form"].errors
    assert not Experiment.objects.exists()


def test_a_marketer_starts_and_stops_an_experiment(marketer, status_model):
    experiment(status_model)
    assert "Start the experiment" in marketer.get("/experiments/banner/").content.decode()
    response = marketer.post("/experiments/banner/start/")
    assert response.status_code == 302 and response["Location"] == "/experiments/banner/"
    assert Experiment.objects.get(key="banner").status == ExperimentStatus.RUNNING
    again = marketer.post("/experiments/banner/start/", follow=True)
    assert "only a draft can be started" in again.content.decode()
    marketer.post("/experiments/banner/stop/")
    assert Experiment.objects.get(key="banner").status == ExperimentStatus.STOPPED


def test_viewers_cannot_create_start_or_stop_experiments(viewer, status_model):
    experiment(status_model)
    assert viewer.get("/experiments/new/").status_code == 403
    assert viewer.post("/experiments/new/", experiment_form()).status_code == 403
    assert viewer.post("/experiments/banner/start/").status_code == 403
    assert Experiment.objects.get().status == ExperimentStatus.DRAFT


def test_an_experiment_start_without_csrf_token_is_refused(status_model):
    experiment(status_model)
    client = user_client("mia", "marketer", csrf=True)
    assert client.post("/experiments/banner/start/").status_code == 403
    assert Experiment.objects.get().status == ExperimentStatus.DRAFT


def test_unknown_experiments_are_404(marketer, status_model):
    assert marketer.get("/experiments/nope/").status_code == 404
    assert marketer.post("/experiments/nope/start/").status_code == 404


# --- login -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/plans/", "/models/status/plans/", "/campaigns/", "/campaigns/new/", "/experiments/", "/experiments/new/"]
)
def test_pages_need_a_login(client, status_model, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_admins_edit_like_marketers(status_model):
    client = user_client("ada", "admin")
    response = client.post("/models/status/plans/new/email/", {"objective": "Grow", "active": "on"})
    assert response.status_code == 302 and ChannelPlan.objects.count() == 1


# --- German: the services' messages in the page's language -----------------------------------------------


@pytest.fixture
def german_marketer(marketer):
    with german(marketer) as client:
        yield client


def test_campaign_errors_from_the_service_are_german_on_the_german_page(german_marketer, status_model):
    other = template_stage()
    response = german_marketer.post("/campaigns/new/", campaign_form(end_date="2024-03-01", stages=[str(other.pk)]))
    page = html.unescape(response.content.decode())
    assert response.status_code == 400 and 'lang="de"' in page
    assert "Die Kampagne endet (2024-03-01), bevor sie beginnt (2024-04-01)." in page
    assert f"Die Stufe '{other.key}' gehört zu einem anderen Modell, nicht zu 'status'." in page
    assert "before it starts" not in page and "belongs to another model" not in page
    assert "Kundenstatus: Neukunde" in page and ">E-Mail</option>" in page  # the choices' German names
    assert not Campaign.objects.exists()


def test_campaign_errors_stay_english_on_the_english_page(marketer, status_model):
    response = marketer.post("/campaigns/new/", campaign_form(end_date="2024-03-01"))
    assert "The campaign ends (2024-03-01) before it starts (2024-04-01)." in response.content.decode()


def test_spend_in_the_future_is_refused_in_german(german_marketer, campaign):
    future = (timezone.now().date() + timedelta(days=5)).isoformat()
    response = german_marketer.post(
        f"/campaigns/{campaign.pk}/spend/", {"period": "day", "date": future, "amount": "10.00"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert f"{future} liegt in der Zukunft; Ausgaben erst erfassen, wenn sie angefallen sind." in page
    assert ">Tag</option>" in page and ">Monat</option>" in page


def test_experiment_errors_and_refusals_are_german(german_marketer, status_model):
    client = german_marketer
    no_control = client.post("/experiments/new/", experiment_form(**{"variants-0-is_control": None}))
    assert "Genau eine Variante muss die Kontrolle sein (is_control: true); es sind 0." in (no_control.content.decode())
    experiment(status_model)
    client.post("/experiments/banner/start/")
    again = client.post("/experiments/banner/start/", follow=True)
    page = html.unescape(again.content.decode())
    assert "Das Experiment 'banner' hat den Status „läuft“; nur ein Entwurf kann gestartet werden." in page


def test_the_experiment_state_reason_is_german_with_german_numbers(german_marketer, status_model):
    client = german_marketer
    exp = experiment(status_model)
    assert "Jede Variante braucht mindestens 30 exponierte Kunden; die kleinste hat 0." in (
        client.get("/experiments/banner/").content.decode()
    )
    experiment_start(experiment=exp, at=at("2024-02-28"))
    cohort(exp, "control", exposed=200, converted=20)
    cohort(exp, "banner", exposed=200, converted=36)
    client.post("/experiments/banner/stop/")
    page = client.get("/experiments/banner/").content.decode()
    # 10 % against 18 % of 200 each: p ≈ 0.021, shown with a decimal comma.
    assert re.search(r"p = 0,02\d\d &lt; 0,05: Die Varianten unterscheiden sich über den Zufall hinaus\.", page)
    assert "Das Experiment wurde gestoppt, als bis zur geplanten Stichprobengröße noch" in page
