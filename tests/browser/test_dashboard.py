"""A marketer in a real browser: overview, funnel chart, drill-down, German, a channel plan edit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from campaigns.models import ChannelPlan
from lifecycle.models import Channel, LifecycleModel
from lifecycle.services import model_reclassify
from tests.browser.conftest import log_in, screenshot
from tests.factories import CustomerFactory, OrderFactory, at

AS_OF = "2024-03-31"


@pytest.fixture
def history(transactional_db) -> LifecycleModel:
    """ada orders twice (active), bob and dee once (new), cyd never (prospect)."""
    email = Channel.objects.get(key="email")
    customers = {
        name: CustomerFactory(external_id=name, first_seen_at=at("2024-01-01", 0), acquisition_channel=email)
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


def test_the_funnel_chart_draws_the_reached_counts_and_a_drop_off_leads_to_its_customers(
    page, live_server, marketer, history
):
    log_in(page, live_server, "mara")
    page.goto(f"{live_server.url}/models/status/funnel/?as_of={AS_OF}")
    drawn = page.evaluate("Chart.getChart(document.getElementById('funnel-chart')).data.datasets[0].data")
    assert drawn == [4, 3, 1]
    screenshot(page, "funnel")

    page.click("#funnel-table tbody tr:nth-child(2) td:nth-child(5) a")  # the drop-off after "new"
    page.wait_for_url("**/funnel/customers/**")
    assert sorted(page.locator("table.data tbody td:first-child").all_inner_texts()) == ["bob", "dee"]
    assert page.errors == []


def test_the_overview_and_every_area_render_without_console_errors(page, live_server, marketer, history):
    log_in(page, live_server, "mara")
    for path in [
        f"/?as_of={AS_OF}",
        f"/models/status/flows/?as_of={AS_OF}&start=2024-01-01&end=2024-03-31",
        f"/models/status/stages/new/?as_of={AS_OF}",
        f"/cohorts/?as_of={AS_OF}",
        f"/value/?as_of={AS_OF}",
        "/customers/ada/",
        "/models/status/plans/",
        "/campaigns/",
        "/experiments/",
    ]:
        page.goto(f"{live_server.url}{path}")
        assert page.locator("main h1").count() >= 1, path
    screenshot(page, "experiments")
    assert page.errors == []


def test_switching_to_german_shows_german_labels(page, live_server, marketer, history):
    log_in(page, live_server, "mara")
    page.goto(f"{live_server.url}/models/status/funnel/?as_of={AS_OF}")
    page.click("form.language button[value=de]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("nav").get_by_text("Trichter").count() == 1


def test_a_marketer_edits_a_channel_plan_cell(page, live_server, marketer, history):
    log_in(page, live_server, "mara")
    page.goto(f"{live_server.url}/models/status/plans/new/email/")
    page.fill("[name=objective]", "Welcome series that leads to a second order")
    page.locator("form").filter(has=page.locator("[name=objective]")).locator("button[type=submit]").click()
    page.wait_for_load_state()
    plan = ChannelPlan.objects.get(stage__model__key="status", stage__key="new", channel__key="email")
    assert plan.objective == "Welcome series that leads to a second order"
    assert plan.history.count() == 1
    assert page.errors == []


def test_the_model_selector_and_the_as_of_filter_change_the_funnel(page, live_server, marketer, history):
    from lifecycle.templates import template_install

    template_install(key="basic")
    log_in(page, live_server, "mara")
    page.goto(f"{live_server.url}/models/status/funnel/?as_of={AS_OF}")
    page.fill("input[name=as_of]", "2024-01-31")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**as_of=2024-01-31**")
    drawn = page.evaluate("Chart.getChart(document.getElementById('funnel-chart')).data.datasets[0].data")
    assert drawn == [4, 3, 0]  # ada's second order came in February

    with page.expect_navigation():
        page.select_option("form.model-select select", value="/models/basic/funnel/")
    assert "/models/basic/funnel/" in page.url
    assert page.errors == []


def test_an_admin_previews_a_rule_change_before_saving_it(page, live_server, history):
    from django.contrib.auth.models import User

    from lifecycle.models import StageRule

    User.objects.create_superuser("root", password="a-long-password-1")
    rule = StageRule.objects.get(stage__model__key="status", stage__key="active")
    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/lifecycle/stagerule/{rule.pk}/change/")
    page.fill("input[name=conditions-0-value]", "3")
    page.click("button[name=_preview], input[name=_preview]")
    page.wait_for_load_state()
    assert page.get_by_text("Confirm and save").count() >= 1
    rule.refresh_from_db()
    assert rule.conditions[0]["value"] == 2  # nothing saved by the preview
    screenshot(page, "rule-preview")
    assert page.errors == []
