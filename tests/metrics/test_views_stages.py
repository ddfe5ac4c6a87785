"""Stage detail and flows pages: the numbers on the page are the metrics', lists sort, search and page, bad filters
show a message, unknown models and stages are 404, the pages need a login and their query counts are bounded."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from campaigns.models import ChannelPlan
from clm.base.days import day_end
from lifecycle.models import Channel, LifecycleModel, Stage
from lifecycle.services import model_reclassify
from metrics.filters import MetricFilters
from metrics.services import metric_result, pipeline_snapshots_compute
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory, at

pytestmark = pytest.mark.django_db

AS_OF = "2024-03-31"
PERIOD = {"as_of": AS_OF, "start": "2024-01-01", "end": "2024-03-31"}
# Session, user and groups, the model, the stage and its rules, the series (4), three snapshots, the plan matrix (3),
# the customer count and page, the model selector: independent of the number of customers.
MAX_STAGE_QUERIES = 20
MAX_FLOWS_QUERIES = 9  # the flow customer list too: session, user, model, stages, count, page, selector


def _reclassify(model: LifecycleModel, *days: str) -> None:
    for day in days:
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))


@pytest.fixture
def history() -> LifecycleModel:
    """All four are prospects on 1 Jan; ada, bob and dee become new on 31 Jan; ada becomes active on 1 Mar."""
    email = Channel.objects.get(key="email")
    customers = {
        name: CustomerFactory(
            external_id=name,
            email=f"{name}@example.com",
            first_seen_at=at(f"2024-01-0{i + 1}", 0),
            acquisition_channel=email,
        )
        for i, name in enumerate(("ada", "bob", "cyd", "dee"))
    }
    OrderFactory(customer=customers["ada"], placed_at=at("2024-01-10"), amount=Decimal("30"))
    OrderFactory(customer=customers["ada"], placed_at=at("2024-02-15"), amount=Decimal("50"))
    OrderFactory(customer=customers["bob"], placed_at=at("2024-01-20"))
    OrderFactory(customer=customers["dee"], placed_at=at("2024-01-05"))
    TouchpointFactory(customer=customers["ada"], occurred_at=at("2024-02-10"), channel=email)
    model = LifecycleModel.objects.get(key="status")
    _reclassify(model, "2024-01-04", "2024-01-31", "2024-03-01")
    pipeline_snapshots_compute(model=model, until=date(2024, 3, 31))
    return model


def _flows(model: LifecycleModel) -> dict:
    snapshot, _ = metric_result(
        kind="flows",
        model=model,
        filters=MetricFilters(as_of=day_end(date(2024, 3, 31))),
        params={"start": date(2024, 1, 1), "end": date(2024, 3, 31)},
    )
    return snapshot.result


# --- stage detail ---------------------------------------------------------------------------------


def test_the_stage_page_shows_rules_trend_flows_and_time_in_stage(
    viewer_client, history, django_assert_max_num_queries
):
    viewer_client.get("/models/status/stages/new/", PERIOD)  # stores the snapshots
    with django_assert_max_num_queries(MAX_STAGE_QUERIES):
        response = viewer_client.get("/models/status/stages/new/", PERIOD)
    assert response.status_code == 200
    page = response.content.decode()
    context = response.context
    assert "order_count = 1" in page and context["rules"] == ["order_count = 1"]

    trend = {point["day"]: point["count"] for point in context["trend"]}
    assert len(trend) == 365 and trend["2024-01-30"] == 0 and trend["2024-02-15"] == 3 and trend["2024-03-31"] == 2

    flows = _flows(history)
    assert [(c["from"], c["count"]) for c in context["inflow"]] == [
        (c["from"], c["count"]) for c in flows["cells"] if c["to"] == "new"
    ]
    assert [(c["from"], c["count"]) for c in context["inflow"]] == [("prospect", 3)]
    assert [(c["to"], c["count"]) for c in context["outflow"]] == [("active", 1)]
    assert context["inflow_total"] == 3 and context["outflow_total"] == 1
    assert "from_stage=prospect&amp;to_stage=new" in page and "start=2024-01-01" in context["inflow"][0]["link"]

    time_row = context["time"]  # ada: 31 Jan 23:00 to 1 Mar 23:00; bob and dee still there
    assert (time_row["completed"], time_row["ongoing"], time_row["median_days"], time_row["p90_days"]) == (1, 2, 30, 30)
    assert {b["label"]: b["count"] for b in context["histogram"]}["30-60"] == 1
    assert 'id="stage-data"' in page and 'id="stage-time-table"' in page


def test_the_stage_page_shows_the_channel_plan_with_its_effectiveness(viewer_client, history):
    new = Stage.objects.get(model=history, key="new")
    email = Channel.objects.get(key="email")
    ChannelPlan.objects.create(
        stage=new, channel=email, objective="Second order within 60 days", kpi="repeat rate", kpi_target=Decimal("0.25")
    )
    response = viewer_client.get("/models/status/stages/new/", PERIOD)
    rows = {row["channel"].key: row for row in response.context["plan_rows"]}
    assert set(rows) == set(Channel.objects.filter(active=True).values_list("key", flat=True))
    assert rows["email"]["plan"].objective == "Second order within 60 days"
    assert all(row["plan"] is None for key, row in rows.items() if key != "email")
    effectiveness, _ = metric_result(
        kind="channel_effectiveness",
        model=history,
        filters=MetricFilters(as_of=day_end(date(2024, 3, 31))),
        params={"start": date(2024, 1, 1), "end": date(2024, 3, 31), "window_days": 30},
    )
    expected = {cell["channel"]: cell for cell in effectiveness.result["cells"] if cell["stage"] == "new"}
    assert {key: row["effect"] for key, row in rows.items()} == expected
    email_cell = expected["email"]  # ada was mailed while new and became active within 30 days
    assert (email_cell["treated"], email_cell["treated_advanced"]) == (1, 1)
    page = response.content.decode()
    assert "Second order within 60 days" in page and "repeat rate (0.25)" in page
    assert f"{email_cell['untreated_advanced']} / {email_cell['untreated']}" in page


def test_the_stage_customer_list_sorts_searches_and_exports(viewer_client, history):
    url = "/models/status/stages/new/"
    ids = lambda response: [c.external_id for c in response.context["page_obj"]]  # noqa: E731
    assert ids(viewer_client.get(url)) == ["bob", "dee"]
    assert ids(viewer_client.get(url, {"sort": "-external_id"})) == ["dee", "bob"]
    assert ids(viewer_client.get(url, {"sort": "first_seen"})) == ["bob", "dee"]
    assert ids(viewer_client.get(url, {"sort": "-first_seen"})) == ["dee", "bob"]
    assert ids(viewer_client.get(url, {"sort": "since"})) == ["bob", "dee"]
    assert ids(viewer_client.get(url, {"sort": "email; drop table"})) == ["bob", "dee"]  # not whitelisted: default
    assert ids(viewer_client.get(url, {"q": "DEE@"})) == ["dee"]
    assert ids(viewer_client.get(url, {"q": "bo"})) == ["bob"]
    response = viewer_client.get(url)
    assert response.context["export_url"] == "/api/v1/models/status/stages/new/export.csv"
    # The session is enough; these customers gave no consent, so only the export regardless of it lists them.
    export = viewer_client.get(response.context["export_url"], {"consent": "any"})
    assert export.status_code == 200
    body = b"".join(export.streaming_content).decode()
    assert "bob" in body and "dee" in body and "ada" not in body


def test_the_stage_customer_list_is_paged_with_bounded_queries(viewer_client, history, django_assert_max_num_queries):
    for n in range(60):
        CustomerFactory(external_id=f"p-{n:02d}", first_seen_at=at("2024-01-02", 0))
    _reclassify(history, "2024-03-02")
    viewer_client.get("/models/status/stages/prospect/", {"as_of": AS_OF})
    with django_assert_max_num_queries(MAX_STAGE_QUERIES):
        first = viewer_client.get("/models/status/stages/prospect/", {"as_of": AS_OF})
    assert first.context["page_obj"].paginator.count == 61  # cyd and the 60 new ones
    assert len(first.context["page_obj"]) == 50 and first.context["page_obj"][0].external_id == "cyd"
    second = viewer_client.get("/models/status/stages/prospect/", {"as_of": AS_OF, "page": "2", "sort": "-external_id"})
    assert [c.external_id for c in second.context["page_obj"]][-1] == "cyd"
    assert "page=1" in second.content.decode()


def test_the_fallback_and_exit_stages_say_so(viewer_client, history):
    prospect = viewer_client.get("/models/status/stages/prospect/").content.decode()
    assert "Fallback: customers who match no other stage" in prospect
    former = viewer_client.get("/models/status/stages/former/")
    assert "exit (off the funnel)" in former.content.decode()
    assert former.context["rules"] == ["order_count >= 1 and days_since_last_order > 365"]


# --- flows ----------------------------------------------------------------------------------------


def test_the_flows_page_shows_every_cell_with_links(viewer_client, history, django_assert_max_num_queries):
    viewer_client.get("/models/status/flows/", PERIOD)
    with django_assert_max_num_queries(MAX_FLOWS_QUERIES):
        response = viewer_client.get("/models/status/flows/", PERIOD)
    assert response.status_code == 200
    flows = _flows(history)
    cells = [(c["from"], c["to"], c["count"], c["customers"]) for c in response.context["cells"]]
    assert cells == [(c["from"], c["to"], c["count"], c["customers"]) for c in flows["cells"]]
    assert cells == [(None, "prospect", 4, 4), ("prospect", "new", 3, 3), ("new", "active", 1, 1)]
    page = response.content.decode()
    assert "/models/status/flows/customers/?" in page and "to_stage=prospect" in page
    assert 'id="flows-data"' in page and "chartjs-chart-sankey.min.js" in page
    totals = {row["key"]: (row["in"], row["out"], row["net"]) for row in response.context["stages"]}
    assert totals["new"] == (3, 1, 2) and totals["prospect"] == (4, 3, 1)
    matrix = viewer_client.get("/models/status/flows/", {**PERIOD, "chart": "matrix"}).content.decode()
    assert "chartjs-chart-matrix.min.js" in matrix and "chartjs-chart-sankey" not in matrix


def test_the_flows_period_defaults_to_the_30_days_ending_as_of(viewer_client, history):
    response = viewer_client.get("/models/status/flows/", {"as_of": "2024-03-10"})
    assert (response.context["period_start"], response.context["period_end"]) == (date(2024, 2, 10), date(2024, 3, 10))
    assert [(c["from"], c["to"], c["count"]) for c in response.context["cells"]] == [("new", "active", 1)]


def test_flow_cells_link_to_the_customers_behind_them(viewer_client, history, django_assert_max_num_queries):
    url = "/models/status/flows/customers/"
    with django_assert_max_num_queries(MAX_FLOWS_QUERIES):
        response = viewer_client.get(url, {**PERIOD, "from_stage": "prospect", "to_stage": "new"})
    assert response.status_code == 200
    assert [c.external_id for c in response.context["page_obj"]] == ["ada", "bob", "dee"]
    export_url = response.context["export_url"]
    assert export_url.startswith("/api/v1/models/status/flows/customers/?") and "export=csv" in export_url
    assert "start=2024-01-01" in export_url and "from_stage=prospect" in export_url
    new = viewer_client.get(url, {**PERIOD, "to_stage": "prospect"})
    assert [c.external_id for c in new.context["page_obj"]] == ["ada", "bob", "cyd", "dee"]
    searched = viewer_client.get(url, {**PERIOD, "to_stage": "prospect", "q": "cyd@"})
    assert [c.external_id for c in searched.context["page_obj"]] == ["cyd"]


def test_the_flows_link_goes_to_the_default_model(viewer_client, history):
    response = viewer_client.get("/flows/", {"as_of": AS_OF})
    assert response.status_code == 302 and response["Location"] == f"/models/status/flows/?as_of={AS_OF}"


# --- bad input, 404s, login -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("/models/status/stages/new/", {}),
        ("/models/status/flows/", {}),
        ("/models/status/flows/customers/", {"to_stage": "new"}),
    ],
)
@pytest.mark.parametrize(
    "params",
    [
        {"as_of": "2024-02-30"},
        {"start": "yesterday"},
        {"start": "2024-03-01", "end": "2024-01-01"},
        {"cohort_start": "2024-03-01", "cohort_end": "2024-01-01"},
        {"as_of": AS_OF, "end": "2023-01-01"},  # only an end before the default start
    ],
)
def test_bad_filters_show_a_message_not_an_error(viewer_client, history, url, base, params):
    response = viewer_client.get(url, {**base, **params})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_unknown_models_and_stages_are_404(viewer_client, history):
    assert viewer_client.get("/models/nope/stages/new/").status_code == 404
    assert viewer_client.get("/models/status/stages/nope/").status_code == 404
    assert viewer_client.get("/models/ecommerce/stages/new/").status_code == 404  # a stage of another model
    assert viewer_client.get("/models/nope/flows/").status_code == 404
    assert viewer_client.get("/models/status/flows/customers/", {"to_stage": "nope"}).status_code == 404
    assert viewer_client.get("/models/status/flows/customers/").status_code == 404
    assert (
        viewer_client.get("/models/status/flows/customers/", {"from_stage": "x", "to_stage": "new"}).status_code == 404
    )


@pytest.mark.parametrize(
    "url", ["/models/status/stages/new/", "/models/status/flows/", "/flows/", "/models/status/flows/customers/"]
)
def test_pages_need_a_login(client, history, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
