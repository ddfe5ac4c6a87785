"""The Content-Security-Policy in a real browser: an admin crawls every dashboard page (the nav, then the links
on each page), the API docs and the admin, and Chromium reports no policy violation and no console error."""

from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from campaigns.campaigns.crud import campaign_create
from campaigns.experiments.crud import experiment_create
from campaigns.models import ChannelPlan
from lifecycle.models import Channel, LifecycleModel, Stage, StageRule
from lifecycle.services import model_reclassify
from tests.browser.conftest import log_in
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory, at

AS_OF = "2024-03-31"
MAX_PAGES = 60  # the crawl's bound: every area and its detail pages fit well within it

# Recorded in the page before any of its scripts runs: every violation the browser reports.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline";
  window.__cspViolations.push(`${event.violatedDirective} blocked ${blocked} in ${event.sourceFile}`);
});
"""


@pytest.fixture
def world(transactional_db) -> None:
    """Customers with orders in stages, a campaign, an experiment and a channel plan: every page has content."""
    email = Channel.objects.get(key="email")
    customers = {
        name: CustomerFactory(external_id=name, first_seen_at=at("2024-01-01", 0), acquisition_channel=email)
        for name in ("ada", "bob", "cyd")
    }
    OrderFactory(customer=customers["ada"], placed_at=at("2024-01-10"), amount=Decimal("30"))
    OrderFactory(customer=customers["ada"], placed_at=at("2024-02-15"), amount=Decimal("50"))
    OrderFactory(customer=customers["bob"], placed_at=at("2024-01-20"))
    TouchpointFactory(customer=customers["cyd"], occurred_at=at("2024-01-08"))
    model = LifecycleModel.objects.get(key="status")
    for day in ("2024-01-01", "2024-01-31", "2024-03-01"):
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))
    new = Stage.objects.get(model=model, key="new")
    campaign_create(
        code="spring",
        name="Spring email",
        channel="email",
        model="status",
        stages=["new"],
        start_date=date(2024, 3, 1),
        end_date=date(2024, 3, 31),
        budget=Decimal("500"),
    )
    experiment_create(
        key="banner",
        name="Checkout banner",
        model=model,
        stage=new,
        goal="place_order",
        window_days=10,
        variants=[
            {"key": "control", "name": "No banner", "weight": 1, "is_control": True},
            {"key": "banner", "name": "Banner", "weight": 1},
        ],
    )
    ChannelPlan.objects.create(stage=new, channel=email, objective="Welcome series")
    User.objects.create_superuser("root", password="a-long-password-1")


def violations(page) -> list[str]:
    found = page.evaluate("window.__cspViolations || []")
    return found + [error for error in page.errors if "Content Security Policy" in error]


def crawl(page, base: str) -> list[str]:
    """Breadth-first over the dashboard's own links (no admin, logout, downloads or other hosts); returns the
    pages visited, failing on the first page with a violation or console error."""
    queue, seen = [f"/?as_of={AS_OF}"], set()
    visited = []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        key = urlsplit(path).path
        if key in seen:
            continue
        seen.add(key)
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        landed = urlsplit(page.url)  # after redirects, e.g. /plans/ -> /models/status/plans/
        seen.add(landed.path)
        visited.append(landed.path + (f"?{landed.query}" if landed.query else ""))
        assert violations(page) == [], path
        assert page.errors == [], path
        for href in page.eval_on_selector_all("header nav a[href], main a[href]", "links => links.map(a => a.href)"):
            parts = urlsplit(href)
            if parts.netloc != urlsplit(base).netloc or parts.path.startswith(("/admin/", "/accounts/", "/api/")):
                continue
            if parts.path.endswith(".csv") or "export" in parts.query:
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return visited


@pytest.fixture
def csp_page(page):
    page.context.add_init_script(RECORD_VIOLATIONS)
    return page


def test_an_admin_crawls_the_dashboard_without_a_csp_violation(csp_page, live_server, world):
    log_in(csp_page, live_server, "root")
    visited = {urlsplit(path).path for path in crawl(csp_page, live_server.url)}
    # Every area and the main detail pages were reached through the links.
    for expected in ["/", "/cohorts/", "/value/", "/campaigns/", "/experiments/", "/experiments/banner/",
                     "/customers/ada/", "/models/status/funnel/", "/models/status/flows/", "/models/status/plans/",
                     "/models/status/stages/new/"]:  # fmt: skip
        assert expected in visited, f"{expected} not reached; visited {sorted(visited)}"
    assert any(path.startswith("/campaigns/") and path[len("/campaigns/") :].rstrip("/").isdigit() for path in visited)
    # Pages reached by forms rather than links: a channel plan cell, the flows as a matrix, a flow's customers.
    for path in [
        "/models/status/plans/new/email/",
        f"/models/status/flows/?as_of={AS_OF}&start=2024-01-01&end=2024-03-31&chart=matrix",
        f"/models/status/flows/customers/?as_of={AS_OF}&start=2024-01-01&end=2024-03-31&from_stage=new&to_stage=active",
    ]:
        csp_page.goto(live_server.url + path)
        csp_page.wait_for_load_state("networkidle")
        assert csp_page.locator("main h1").count() >= 1, path
        assert violations(csp_page) == [] and csp_page.errors == [], path
    # Charts were drawn: Chart.js ran under the policy.
    csp_page.goto(f"{live_server.url}/models/status/funnel/?as_of={AS_OF}")
    assert csp_page.evaluate("Chart.getChart(document.getElementById('funnel-chart')) !== undefined")


def test_the_api_docs_render_under_the_policy(csp_page, live_server, world):
    log_in(csp_page, live_server, "root")
    csp_page.goto(f"{live_server.url}/api/v1/docs/")
    csp_page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)  # the script ran and read the schema
    csp_page.wait_for_selector(".opblock", timeout=20_000)
    assert violations(csp_page) == []
    assert csp_page.errors == []


def test_the_admin_works_under_the_policy(csp_page, live_server, world):
    log_in(csp_page, live_server, "root")
    rule = StageRule.objects.filter(stage__model__key="status").first()
    model = LifecycleModel.objects.get(key="status")
    for path in [
        "/admin/",
        "/admin/clm/apikey/",
        "/admin/clm/apikey/add/",
        "/admin/auth/user/add/",
        "/admin/lifecycle/lifecyclemodel/",
        f"/admin/lifecycle/lifecyclemodel/{model.pk}/change/",
        f"/admin/lifecycle/stagerule/{rule.pk}/change/",
        "/admin/campaigns/campaign/add/",
    ]:
        csp_page.goto(f"{live_server.url}{path}")
        csp_page.wait_for_load_state("networkidle")
        assert violations(csp_page) == [], path
        assert csp_page.errors == [], path
    # The admin's own scripts ran: the date widget's shortcuts ("Today", the calendar) are drawn by them.
    csp_page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    assert csp_page.locator(".datetimeshortcuts").count() >= 1


def test_the_crawl_would_see_a_violation(csp_page, live_server, world):
    """The recorder works: an injected inline script and style attribute are blocked and reported."""
    log_in(csp_page, live_server, "root")
    csp_page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.appendChild(script);
          document.body.setAttribute("style", "background: red");
        }"""
    )
    csp_page.wait_for_function("window.__cspViolations.length >= 2")
    assert csp_page.evaluate("window.__ran") is None  # blocked, not run
    found = " ".join(violations(csp_page))
    assert "script-src" in found and "style-src" in found
