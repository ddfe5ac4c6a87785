"""The metrics API: every endpoint on a small history, its filters, its bad input, its drill-downs and CSV.

The history is made by classifying ORM data as of past moments (lifecycle.services.model_reclassify) in the
`status` model: everyone is a prospect on 2024-01-01; by 2024-01-31 ada, bob and dee have ordered (new); by
2024-03-01 ada has ordered again (active). cyd never orders. dee came through paid ads, the others by email.
"""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from lifecycle.models import Channel, LifecycleModel
from lifecycle.services import model_reclassify
from metrics.models import MetricSnapshot
from tests.conftest import error_fields
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = "2024-03-31"
# API-key authentication (2) + model lookup + snapshot lookup, and a little room: independent of customer count.
MAX_QUERIES_FROM_SNAPSHOT = 6


@pytest.fixture
def history() -> LifecycleModel:
    email, paid = Channel.objects.get(key="email"), Channel.objects.get(key="paid_ads")
    customers = {
        name: CustomerFactory(
            external_id=name, email=f"{name}@example.com", first_seen_at=at("2024-01-01", 0), acquisition_channel=email
        )
        for name in ("ada", "bob", "cyd")
    }
    customers["dee"] = CustomerFactory(external_id="dee", first_seen_at=at("2024-01-01", 0), acquisition_channel=paid)
    OrderFactory(customer=customers["ada"], placed_at=at("2024-01-10"), amount=Decimal("30"))
    OrderFactory(customer=customers["ada"], placed_at=at("2024-02-15"), amount=Decimal("50"))
    OrderFactory(customer=customers["bob"], placed_at=at("2024-01-20"), amount=Decimal("20"))
    OrderFactory(customer=customers["dee"], placed_at=at("2024-01-05"), amount=Decimal("10"))
    model = LifecycleModel.objects.get(key="status")
    for day in ("2024-01-01", "2024-01-31", "2024-03-01"):
        model_reclassify(model=model, as_of=datetime.fromisoformat(day).replace(hour=23, tzinfo=UTC))
    return model


def steps_by_stage(body: dict) -> dict[str, dict]:
    return {step["stage"]: step for step in body["result"]["steps"]}


def test_the_funnel_counts_each_step_and_flags_the_biggest_drop_off(reader, history):
    response = reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["kind"] == "funnel" and body["model"] == "status" and body["as_of"] == AS_OF
    assert body["source"] == "computed" and body["computed_at"]
    steps = steps_by_stage(body)
    assert [steps[key]["reached"] for key in ("prospect", "new", "active")] == [4, 3, 1]
    assert steps["prospect"]["conversion"] == pytest.approx(0.75)
    assert steps["new"]["conversion"] == pytest.approx(1 / 3)
    assert steps["new"]["drop_off"] == 2
    assert steps["new"]["biggest_drop_off"] is True and steps["prospect"]["biggest_drop_off"] is False


def test_a_repeated_funnel_request_reads_its_snapshot_in_a_bounded_number_of_queries(
    reader, history, django_assert_max_num_queries
):
    reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF})
    with django_assert_max_num_queries(MAX_QUERIES_FROM_SNAPSHOT):
        response = reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF})
    assert response.json()["source"] == "snapshot"


def test_the_funnel_honours_channel_cohort_and_window_filters(reader, history):
    by_paid = reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF, "channel": "paid_ads"}).json()
    assert [step["reached"] for step in by_paid["result"]["steps"]] == [1, 1, 0]
    assert by_paid["filters"]["channel"] == "paid_ads"

    # Classified once a month, ada entered new on Jan 31 and active on Mar 1: 30 days.
    within_29 = steps_by_stage(reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF, "window_days": 29}).json())
    within_30 = steps_by_stage(reader.get("/api/v1/models/status/funnel/", {"as_of": AS_OF, "window_days": 30}).json())
    assert within_29["new"]["converted"] == 0 and within_30["new"]["converted"] == 1

    empty = reader.get(
        "/api/v1/models/status/funnel/", {"as_of": AS_OF, "cohort_start": "2023-01-01", "cohort_end": "2023-06-30"}
    )
    assert empty.status_code == 200
    assert all(step["reached"] == 0 and step["conversion"] is None for step in empty.json()["result"]["steps"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as_of": "2024-02-30"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"as_of": "2999-01-01"}, "as_of"),
        ({"cohort_start": "2024-02-01", "cohort_end": "2024-01-01"}, "cohort_end"),
        ({"window_days": "0"}, "window_days"),
        ({"window_days": "-7"}, "window_days"),
        ({"window_days": "ten"}, "window_days"),
        ({"channel": "carrier_pigeon"}, "channel"),
    ],
)
def test_bad_filters_get_a_400_naming_the_parameter(reader, history, params, field):
    response = reader.get("/api/v1/models/status/funnel/", params)
    assert response.status_code == 400
    assert field in error_fields(response)
    assert not MetricSnapshot.objects.exists()


def test_an_unknown_model_is_a_404(reader, history):
    response = reader.get("/api/v1/models/nope/funnel/")
    assert response.status_code == 404 and "status" in response.json()["detail"]
    assert reader.get("/api/v1/metrics/rates/", {"model": "nope"}).status_code == 400


def test_the_customers_behind_a_funnel_count_are_listed_and_exported(reader, history):
    dropped = reader.get(
        "/api/v1/models/status/funnel/customers/", {"as_of": AS_OF, "stage": "new", "outcome": "dropped"}
    )
    assert dropped.status_code == 200
    assert sorted(row["external_id"] for row in dropped.json()["results"]) == ["bob", "dee"]

    exported = reader.get(
        "/api/v1/models/status/funnel/customers/", {"as_of": AS_OF, "stage": "prospect", "export": "csv"}
    )
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0] == ["external_id", "email", "name", "first_seen_at", "acquisition_channel"]
    assert sorted(row[0] for row in rows[1:]) == ["ada", "bob", "cyd", "dee"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stage": "nope"}, "Unknown stage"),
        ({"stage": "former"}, "not a funnel stage"),
        ({"stage": "active", "outcome": "dropped"}, "last funnel step"),
        ({"stage": "new", "outcome": "vanished"}, None),
    ],
)
def test_a_funnel_drill_down_for_no_such_step_is_a_400(reader, history, params, message):
    response = reader.get("/api/v1/models/status/funnel/customers/", params)
    assert response.status_code == 400
    body = error_fields(response)
    if message:
        assert message in body["stage"][0]


def test_flows_count_moves_in_the_period_and_list_the_customers_behind_a_cell(reader, history):
    body = reader.get("/api/v1/models/status/flows/", {"start": "2024-01-15", "end": "2024-03-31", "as_of": AS_OF})
    assert body.status_code == 200
    cells = {(cell["from"], cell["to"]): cell["count"] for cell in body.json()["result"]["cells"]}
    assert cells == {("prospect", "new"): 3, ("new", "active"): 1}

    movers = reader.get(
        "/api/v1/models/status/flows/customers/",
        {"start": "2024-01-15", "end": "2024-03-31", "as_of": AS_OF, "from_stage": "prospect", "to_stage": "new"},
    )
    assert sorted(row["external_id"] for row in movers.json()["results"]) == ["ada", "bob", "dee"]


def test_a_period_that_starts_after_as_of_is_a_400(reader, history):
    # Found by schemathesis: only `end`, far ahead, put the default start after as_of, and the request failed with 500.
    response = reader.get("/api/v1/metrics/rates/", {"model": "status", "end": "8660-07-16"})
    assert response.status_code == 400 and "after as_of" in error_fields(response)["start"][0]


def test_a_period_ending_before_it_starts_is_a_400(reader, history):
    response = reader.get("/api/v1/models/status/flows/", {"start": "2024-03-01", "end": "2024-02-01"})
    assert response.status_code == 400 and "end" in error_fields(response)


def test_time_in_stage_reports_completed_stays(reader, history):
    body = reader.get("/api/v1/models/status/time-in-stage/", {"as_of": AS_OF}).json()
    stages = {stage["stage"]: stage for stage in body["result"]["stages"]}
    assert stages["prospect"]["completed"] == 3 and stages["prospect"]["ongoing"] == 1
    assert stages["prospect"]["median_days"] == 30  # Jan 1 → Jan 31
    assert stages["new"]["completed"] == 1 and stages["new"]["median_days"] == 30


def test_the_pipeline_history_reads_the_daily_series(reader, history):
    from metrics.services import pipeline_snapshots_compute

    pipeline_snapshots_compute(model=history, until=date(2024, 3, 31))
    body = reader.get("/api/v1/models/status/pipeline/history/", {"start": "2024-01-30", "end": "2024-02-01"}).json()
    assert [day["counts"]["new"] for day in body["days"]] == [0, 3, 3]
    assert [day["day"] for day in body["days"]] == ["2024-01-30", "2024-01-31", "2024-02-01"]


def test_rates_carry_definitions_and_targets(reader, history):
    body = reader.get("/api/v1/metrics/rates/", {"start": "2024-01-01", "end": "2024-03-31", "as_of": AS_OF})
    assert body.status_code == 200, body.json()
    rates = body.json()["result"]["rates"]
    assert rates["repeat_purchase_rate"]["value"] == pytest.approx(1 / 3)  # ada of ada, bob, dee
    assert rates["repeat_purchase_rate"]["benchmark"] == 0.28
    assert rates["repeat_purchase_rate"]["below_benchmark"] is False
    assert rates["conversion_rate"]["value"] == pytest.approx(0.75)
    assert all(rate["definition"] for rate in rates.values())


def test_cohorts_by_share_and_revenue_and_their_drill_down(reader, history):
    share = reader.get("/api/v1/metrics/cohorts/", {"as_of": AS_OF}).json()["result"]
    january = next(cohort for cohort in share["cohorts"] if cohort["cohort"] == "2024-01")
    assert january["size"] == 3
    assert january["values"][:3] == [1.0, pytest.approx(1 / 3, abs=1e-4), 0.0]
    assert january["values"][3] is None  # April is after as_of: not observable yet

    revenue = reader.get("/api/v1/metrics/cohorts/", {"as_of": AS_OF, "measure": "revenue"}).json()["result"]
    january = next(cohort for cohort in revenue["cohorts"] if cohort["cohort"] == "2024-01")
    assert january["values"][1] == pytest.approx(110 / 3, abs=0.01)

    ordered_again = reader.get("/api/v1/metrics/cohorts/customers/", {"as_of": AS_OF, "cohort": "2024-01", "month": 1})
    assert [row["external_id"] for row in ordered_again.json()["results"]] == ["ada"]
    assert reader.get("/api/v1/metrics/cohorts/", {"measure": "profit"}).status_code == 400
    assert reader.get("/api/v1/metrics/cohorts/customers/", {"cohort": "2024-13", "month": 1}).status_code == 400


def test_rfm_segments_and_their_customers(reader, history):
    body = reader.get("/api/v1/metrics/rfm/", {"as_of": AS_OF}).json()["result"]
    assert body["buyers"] == 3
    assert sum(segment["customers"] for segment in body["segments"]) == 3
    segment = next(segment for segment in body["segments"] if segment["customers"])
    listed = reader.get("/api/v1/metrics/rfm/customers/", {"as_of": AS_OF, "segment": segment["key"]}).json()
    assert len(listed["results"]) == segment["customers"]
    assert reader.get("/api/v1/metrics/rfm/customers/", {"segment": "royalty"}).status_code == 400
    assert reader.get("/api/v1/metrics/rfm/", {"as_of": AS_OF, "start": "2024-04-01"}).status_code == 400


def test_activity_per_month_and_its_drill_down(reader, history):
    body = reader.get("/api/v1/metrics/activity/", {"as_of": AS_OF, "interval": "month"}).json()["result"]
    periods = {period["period"]: period for period in body["periods"]}
    assert periods["2024-01"]["new"] == 3
    assert periods["2024-02"]["returning"] == 1 and periods["2024-02"]["dormant"] == -2
    listed = reader.get(
        "/api/v1/metrics/activity/customers/",
        {"as_of": AS_OF, "interval": "month", "period": "2024-02", "category": "dormant"},
    ).json()
    assert sorted(row["external_id"] for row in listed["results"]) == ["bob", "dee"]
    bad = reader.get(
        "/api/v1/metrics/activity/customers/", {"interval": "week", "period": "2024-01-03", "category": "new"}
    )
    assert bad.status_code == 400 and "period" in error_fields(bad)


def test_cac_and_historical_clv(reader, history):
    from campaigns.models import MarketingSpend

    MarketingSpend.objects.create(
        channel=Channel.objects.get(key="paid_ads"), period="month", date=date(2024, 1, 1), amount=Decimal("40")
    )
    cac = reader.get("/api/v1/metrics/cac/", {"as_of": AS_OF}).json()["result"]
    paid = next(channel for channel in cac["channels"] if channel["channel"] == "paid_ads")
    assert paid["new_customers"] == 1 and paid["cac"] == 40.0
    assert paid["historical_clv"] == 10.0 and paid["clv_cac"] == pytest.approx(0.25)

    clv = reader.get("/api/v1/metrics/clv/historical/", {"as_of": AS_OF}).json()["result"]
    assert clv["totals"]["customers"] == 3 and clv["totals"]["revenue"] == 110.0


def test_clv_before_any_fit_says_so(reader, history):
    assert reader.get("/api/v1/metrics/clv/").json()["status"] == "not_fitted"
    value = reader.get("/api/v1/customers/ada/value/").json()
    assert value["status"] == "not_fitted" and "fit_clv" in value["detail"]
    assert reader.get("/api/v1/customers/nobody/value/").status_code == 404


def test_clv_accuracy_refuses_a_future_calibration_and_degenerate_data(reader, history):
    future = reader.get("/api/v1/metrics/clv/accuracy/", {"calibration_end": "2999-01-01"})
    assert future.status_code == 400 and "calibration_end" in error_fields(future)
    missing = reader.get("/api/v1/metrics/clv/accuracy/")
    assert missing.status_code == 400 and "calibration_end" in error_fields(missing)
    # By Jan 31 nobody has bought twice: the model cannot be fitted.
    degenerate = reader.get("/api/v1/metrics/clv/accuracy/", {"calibration_end": "2024-01-31"})
    assert degenerate.status_code == 400 and error_fields(degenerate)["calibration_end"][0]


def test_targets_list_benchmarks_with_their_sources(reader, history):
    targets = {row["metric"]: row for row in reader.get("/api/v1/metrics/targets/").json()}
    assert targets["repeat_purchase_rate"]["benchmark"] == 0.28 and targets["repeat_purchase_rate"]["benchmark_source"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/status/funnel/",
        "/api/v1/models/status/flows/",
        "/api/v1/models/status/time-in-stage/",
        "/api/v1/metrics/rates/",
        "/api/v1/metrics/cohorts/",
        "/api/v1/metrics/rfm/",
        "/api/v1/metrics/activity/",
        "/api/v1/metrics/cac/",
        "/api/v1/metrics/clv/historical/",
    ],
)
def test_every_metric_answers_from_its_snapshot_in_bounded_queries(
    reader, history, path, django_assert_max_num_queries
):
    first = reader.get(path, {"as_of": AS_OF})
    assert first.status_code == 200 and first.json()["source"] == "computed"
    with django_assert_max_num_queries(MAX_QUERIES_FROM_SNAPSHOT):
        again = reader.get(path, {"as_of": AS_OF})
    assert again.json()["source"] == "snapshot" and again.json()["result"] == first.json()["result"]


def test_metrics_need_a_key_with_the_read_scope(api_client, history):
    assert api_client.get("/api/v1/models/status/funnel/").status_code in (401, 403)
    assert api_client.get("/api/v1/metrics/clv/").status_code in (401, 403)
