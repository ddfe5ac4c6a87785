"""The overview page: its KPIs, funnel, trend and runs are the selectors' and metrics' numbers, with the change
against the previous period; bad filters show a message; unknown models are 404; the query count is fixed."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import MarketingSpend, SpendPeriod
from clm.base.days import day_end
from lifecycle.models import Channel, ClassificationRun, Customer, LifecycleModel
from lifecycle.selectors import model_pipeline
from lifecycle.services import model_reclassify
from lifecycle.templates import template_install
from metrics.forms import FiltersForm
from metrics.models import ClvFit, CustomerValue, MetricsJob, MetricsRun, MetricTarget, PipelineSnapshot
from metrics.selectors import metrics_runs_latest, pipeline_series
from metrics.services import metric_result, pipeline_snapshots_compute
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, at
from tests.language import language_restored

pytestmark = pytest.mark.django_db

AS_OF = "2024-03-31"
URL = "/models/status/overview/"
# session, user, layout's models, 5 snapshots, CLV fit, stages, pipeline series (4) and counts (2), runs (1 + 4),
# data summary (7), heartbeat and the health check's SELECT 1: none of them depends on the number of customers.
MAX_PAGE_QUERIES = 34

# The period of the rates as of AS_OF (30 days) and the one before it.
PERIOD = (date(2024, 3, 2), date(2024, 3, 31))
PREVIOUS = (date(2024, 2, 1), date(2024, 3, 1))


@pytest.fixture
def history() -> LifecycleModel:
    """Two customers first seen in the previous period (p1 buys on Feb 12 and again on Mar 15, p2 never) and four in
    this one (c1–c3 buy on Mar 10, c4 never); NPS answers p1 10 (Feb), c1 3 and c2 9 (Mar); email spend 100 on
    Feb 10 and 500 on Mar 10. The model is reclassified on each day something happens, then its series computed.
    """
    email = Channel.objects.get(key="email")
    customers = {}
    first_seen = {"p1": "2024-02-10", "p2": "2024-02-10"} | {f"c{i}": "2024-03-05" for i in (1, 2, 3, 4)}
    for name, day in first_seen.items():
        customers[name] = CustomerFactory(
            external_id=name, email=f"{name}@example.com", first_seen_at=at(day, 0), acquisition_channel=email
        )
    OrderFactory(customer=customers["p1"], placed_at=at("2024-02-12"), amount=Decimal("40"))
    OrderFactory(customer=customers["p1"], placed_at=at("2024-03-15"), amount=Decimal("60"))
    for name in ("c1", "c2", "c3"):
        OrderFactory(customer=customers[name], placed_at=at("2024-03-10"), amount=Decimal("20"))
    FeedbackFactory(customer=customers["p1"], score=10, submitted_at=at("2024-02-15"))
    FeedbackFactory(customer=customers["c1"], score=3, submitted_at=at("2024-03-20"))
    FeedbackFactory(customer=customers["c2"], score=9, submitted_at=at("2024-03-20"))
    MarketingSpend.objects.create(channel=email, period=SpendPeriod.DAY, date=date(2024, 2, 10), amount=100)
    MarketingSpend.objects.create(channel=email, period=SpendPeriod.DAY, date=date(2024, 3, 10), amount=500)
    model = LifecycleModel.objects.get(key="status")
    for day in ("2024-02-10", "2024-02-12", "2024-03-01", "2024-03-05", "2024-03-10", "2024-03-15", "2024-03-31"):
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))
    pipeline_snapshots_compute(model=model, until=date(2024, 3, 31))
    return model


def _filters():
    form = FiltersForm({"as_of": AS_OF})
    return form.filters()


def _kpis(response) -> dict:
    return {kpi["key"]: kpi for kpi in response.context["kpis"]}


def test_the_kpis_are_the_rates_cac_and_stage_counts_of_both_periods(viewer_client, history):
    response = viewer_client.get(URL, {"as_of": AS_OF})
    assert response.status_code == 200
    filters = _filters()
    rates = metric_result(kind="rates", model=history, filters=filters, params={"start": PERIOD[0], "end": PERIOD[1]})
    before = metric_result(
        kind="rates", model=history, filters=filters, params={"start": PREVIOUS[0], "end": PREVIOUS[1]}
    )
    kpis = _kpis(response)
    for key in ("conversion_rate", "repeat_purchase_rate", "churn_rate", "nps"):
        assert kpis[key]["value"] == rates[0].result["rates"][key]["value"]
        assert kpis[key]["previous"] == before[0].result["rates"][key]["value"]
    cac = metric_result(kind="cac", model=None, filters=filters, params={})[0]
    cac_before = metric_result(kind="cac", model=None, filters=replace(filters, as_of=day_end(PREVIOUS[1])), params={})
    assert kpis["cac"]["value"] == cac.result["totals"]["cac"]
    assert kpis["cac"]["previous"] == cac_before[0].result["totals"]["cac"]

    pipeline = model_pipeline(model=history, as_of=filters.as_of)
    series = pipeline_series(model=history, start=PREVIOUS[1], end=PREVIOUS[1])
    stage_kpis = {kpi["key"]: kpi for kpi in response.context["stage_kpis"]}
    assert list(stage_kpis) == [row.key for row in pipeline]
    for row in pipeline:
        assert stage_kpis[row.key]["value"] == row.count
        assert stage_kpis[row.key]["previous"] == series["days"][0]["counts"][row.key]


def test_the_change_against_the_previous_period_on_a_hand_made_history(viewer_client, history):
    response = viewer_client.get(URL, {"as_of": AS_OF})
    kpis = _kpis(response)
    # conversion: 3 of the 4 leads of March bought (before: 1 of 2); repeat: p1 of 4 buyers (before: 0 of 1).
    assert (kpis["conversion_rate"]["value"], kpis["conversion_rate"]["previous"]) == (0.75, 0.5)
    assert kpis["conversion_rate"]["change"] == pytest.approx(25.0) and kpis["conversion_rate"]["tone"] == "good"
    assert (kpis["repeat_purchase_rate"]["value"], kpis["repeat_purchase_rate"]["previous"]) == (0.25, 0.0)
    # churn: nobody left the funnel; before, nobody was in it at the start (no rate, no change).
    assert (kpis["churn_rate"]["value"], kpis["churn_rate"]["previous"], kpis["churn_rate"]["change"]) == (
        0,
        None,
        None,
    )
    # NPS: 2 promoters and 1 detractor of 3 (before: 1 promoter of 1).
    assert kpis["nps"]["value"] == pytest.approx(100 / 3) and kpis["nps"]["previous"] == 100
    assert kpis["nps"]["change"] == pytest.approx(100 / 3 - 100) and kpis["nps"]["tone"] == "bad"
    # blended CAC: 600 / 4 new customers, as of Mar 1 100 / 1: up by 50, which is bad.
    assert (kpis["cac"]["value"], kpis["cac"]["previous"], kpis["cac"]["change"]) == (150, 100, 50)
    assert kpis["cac"]["tone"] == "bad"
    stages = {kpi["key"]: (kpi["value"], kpi["previous"], kpi["change"]) for kpi in response.context["stage_kpis"]}
    assert stages == {
        "prospect": (2, 1, 1),
        "new": (3, 1, 2),
        "active": (1, 0, 1),
        "inactive": (0, 0, 0),
        "former": (0, 0, 0),
    }
    page = response.content.decode()
    assert "75.0 %" in page and "+25.0 pp" in page and "33.3" in page and "-66.7 points" in page
    assert "150.00" in page and "+50.00" in page and "2024-02-01 – 2024-03-01" in page


def test_predicted_clv_is_the_mean_of_the_latest_fit_or_says_not_fitted(viewer_client, history):
    response = viewer_client.get(URL, {"as_of": AS_OF})
    assert _kpis(response)["predicted_clv"]["value"] is None and "not fitted yet" in response.content.decode()

    fit = ClvFit.objects.create(
        as_of=at("2024-03-31"), fitted_at=timezone.now(), customers=4, repeat_customers=1, r=1, alpha=1, a=1, b=1,
        log_likelihood=-1,
    )  # fmt: skip
    for external_id, spend in [("p1", 120.0), ("c1", 30.0), ("c2", 30.0)]:
        CustomerValue.objects.create(
            customer=Customer.objects.get(external_id=external_id),
            fit=fit, frequency=0, recency_weeks=0, age_weeks=1, monetary_value=0, p_alive=0.5,
            expected_purchases_90d=0, expected_purchases_365d=1, expected_spend_90d=0, expected_spend_365d=spend,
        )  # fmt: skip
    kpis = _kpis(viewer_client.get(URL, {"as_of": AS_OF}))
    assert kpis["predicted_clv"]["value"] == pytest.approx(60.0) and kpis["predicted_clv"]["customers"] == 3


def test_the_funnel_table_flags_every_drop_off_and_links_to_its_customers(viewer_client, history):
    MetricTarget.objects.create(metric="conversion:status:new", label="new → active", goal=0.5)
    MetricTarget.objects.create(
        metric="conversion:status:prospect", label="prospect → new", goal=0.5, benchmark=0.9, benchmark_source="test"
    )
    response = viewer_client.get(URL, {"as_of": AS_OF})
    funnel = metric_result(kind="funnel", model=history, filters=_filters(), params={})[0].result
    assert response.context["funnel"] == funnel
    steps = {step["stage"]: step for step in funnel["steps"]}
    assert [steps[key]["reached"] for key in ("prospect", "new", "active")] == [6, 4, 1]
    assert steps["new"]["biggest_drop_off"] and steps["new"]["below_goal"]
    assert steps["prospect"]["below_benchmark"] and not steps["prospect"]["below_goal"]
    assert response.context["biggest_drop_off"]["stage"] == "new"
    page = response.content.decode()
    table = page[page.index('id="overview-funnel-table"') :]
    assert table.count("biggest drop-off") == 1 and "below goal" in table and "below benchmark" in table
    assert "meets goal" in table
    assert f"/models/status/funnel/customers/?as_of={AS_OF}&amp;stage=new&amp;outcome=dropped" in page
    assert f"/models/status/funnel/?as_of={AS_OF}" in page
    assert "The funnel leaks most after “New customer”: 75 %" in page
    dropped = viewer_client.get(
        "/models/status/funnel/customers/", {"as_of": AS_OF, "stage": "new", "outcome": "dropped"}
    )
    assert len(dropped.context["page_obj"]) == steps["new"]["drop_off"] == 3


def test_rate_kpis_show_their_goals_and_misses(viewer_client, history):
    MetricTarget.objects.filter(metric="conversion_rate").update(goal=0.9)
    response = viewer_client.get(URL, {"as_of": AS_OF})
    kpi = _kpis(response)["conversion_rate"]
    assert kpi["below_goal"] and kpi["goal"] == pytest.approx(90)
    assert "misses goal" in response.content.decode()


def test_the_trend_chart_and_table_are_the_pipeline_series(viewer_client, history):
    response = viewer_client.get(URL, {"as_of": AS_OF})
    page = response.content.decode()
    start = date(2024, 3, 31) - timedelta(days=364)
    series = pipeline_series(model=history, start=start, end=date(2024, 3, 31))
    marker = '<script id="trend-data" type="application/json">'
    data = json.loads(page[page.index(marker) + len(marker) : page.index("</script>", page.index(marker))])
    assert data["labels"] == [day["day"].isoformat() for day in series["days"]] and len(data["labels"]) == 365
    for dataset in data["datasets"]:
        assert dataset["data"] == [day["counts"][dataset["stage"]] for day in series["days"]]
    assert [dataset["stage"] for dataset in data["datasets"]] == series["stages"]
    assert data["datasets"][0]["colour"].startswith("#")
    rows = response.context["trend_rows"]
    assert [row["day"] for row in rows[-3:]] == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    by_day = {day["day"]: day["counts"] for day in series["days"]}
    for row in rows:
        assert row["counts"] == [by_day[row["day"]][key] for key in series["stages"]]
    assert "js/metrics/overview.js" in page and 'id="overview-trend-table"' in page


def test_the_page_says_when_the_series_is_not_computed(viewer_client, history):
    PipelineSnapshot.objects.all().delete()
    response = viewer_client.get(URL, {"as_of": AS_OF})
    page = response.content.decode()
    assert response.status_code == 200 and "has not been computed yet" in page and "trend-data" not in page
    assert all(kpi["previous"] is None for kpi in response.context["stage_kpis"])


def test_the_last_runs_of_classification_and_metrics_jobs_are_shown(viewer_client, history):
    MetricsRun.objects.create(
        job=MetricsJob.CLV_FIT, as_of=at("2024-03-31"), status="failed", error="ClvFitError: too few repeat buyers"
    )
    response = viewer_client.get(URL, {"as_of": AS_OF})
    latest = ClassificationRun.objects.filter(model=history).order_by("-started_at", "-pk").first()
    assert [run.pk for run in response.context["classification_runs"]] == [latest.pk]
    assert [run.pk for run in response.context["metrics_runs"]] == [run.pk for run in metrics_runs_latest()]
    page = response.content.decode()
    assert "too few repeat buyers" in page and "Data as of 2024-03-31" in page


def test_the_home_page_is_the_overview_of_the_default_model_with_the_system_state(viewer_client, history):
    response = viewer_client.get("/", {"as_of": AS_OF})
    assert response.status_code == 200
    assert response.context["current_model"] == history and response.context["page"] == "overview"
    page = response.content.decode()
    assert 'id="overview-kpis"' in page and 'id="overview-system"' in page and "Worker and beat" in page
    # the layout's model selector switches to another model's overview
    assert '<option value="/models/status/overview/" selected>' in page


def test_another_model_has_its_own_overview(viewer_client, history):
    template_install(key="ecommerce")
    response = viewer_client.get("/models/ecommerce/overview/", {"as_of": AS_OF})
    assert response.status_code == 200 and response.context["current_model"].key == "ecommerce"
    assert '<option value="/models/ecommerce/overview/" selected>' in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"as_of": "2024-02-30"},
        {"as_of": "yesterday"},
        {"cohort_start": "2024-03-01", "cohort_end": "2024-01-01"},
        {"window_days": "0"},
        {"channel": "nope"},
    ],
)
def test_bad_filters_show_a_message_not_an_error(viewer_client, history, params):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_a_channel_filter_narrows_the_rates_and_says_stage_counts_are_for_everyone(viewer_client, history):
    response = viewer_client.get(URL, {"as_of": AS_OF, "channel": "paid_ads"})
    assert response.status_code == 200
    assert _kpis(response)["conversion_rate"]["value"] is None  # nobody was acquired through paid ads
    assert "the cohort and channel filters do not apply here" in response.content.decode()


def test_an_unknown_model_is_404(viewer_client, history):
    assert viewer_client.get("/models/nope/overview/").status_code == 404


def test_the_overview_needs_a_login(client, history):
    for url in (URL, "/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_query_count_is_bounded_and_independent_of_the_customers(
    viewer_client, history, django_assert_max_num_queries
):
    viewer_client.get(URL, {"as_of": AS_OF})  # computes and stores the snapshots
    with django_assert_max_num_queries(MAX_PAGE_QUERIES):
        response = viewer_client.get(URL, {"as_of": AS_OF})
    assert response.status_code == 200
    reset_queries()  # each request clears the log (request_started): the capture must start from an empty one
    with CaptureQueriesContext(connection) as few:
        viewer_client.get(URL, {"as_of": AS_OF})

    email = Channel.objects.get(key="email")
    for i in range(30):
        customer = CustomerFactory(
            external_id=f"more-{i}", first_seen_at=at("2024-03-06", 0), acquisition_channel=email
        )
        OrderFactory(customer=customer, placed_at=at("2024-03-07"))
    model_reclassify(model=history, as_of=datetime(2024, 3, 31, 23, tzinfo=UTC))
    pipeline_snapshots_compute(model=history, until=date(2024, 3, 31))
    viewer_client.get(URL, {"as_of": AS_OF, "window_days": "30"})  # a new filter: computed once, then stored
    reset_queries()
    with CaptureQueriesContext(connection) as many:
        viewer_client.get(URL, {"as_of": AS_OF, "window_days": "30"})
    assert len(many) == len(few) > 0


def test_without_filters_the_stage_counts_are_the_current_stages(viewer_client, history):
    response = viewer_client.get(URL)
    assert response.status_code == 200 and response.context["stages_now"]
    counts = {kpi["key"]: kpi["value"] for kpi in response.context["stage_kpis"]}
    assert counts == {row.key: row.count for row in model_pipeline(model=history)}
    assert "Customers per stage now" in response.content.decode()


def test_the_chart_labels_follow_the_language(viewer_client, history):
    with language_restored():
        response = viewer_client.get(URL, {"as_of": AS_OF}, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    labels = [dataset["label"] for dataset in response.context["trend_chart"]["datasets"]]
    assert "Neukunde" in labels and "Neukunde" in response.content.decode()
