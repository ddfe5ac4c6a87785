"""Time in stage and time to convert (metrics.stage_time), on histories whose stays are counted by hand."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from lifecycle.models import Channel, Customer, LifecycleModel
from metrics.filters import MetricFilters
from metrics.stage_time import bins, day_statistics, time_in_stage_compute
from tests.factories import CustomerFactory, at, transitions_record

pytestmark = pytest.mark.django_db

AS_OF = datetime.combine(date(2024, 12, 31), time.max, UTC)


@pytest.fixture
def history(status_model: LifecycleModel) -> None:
    ann, ben, cat, dan = (CustomerFactory(external_id=name) for name in ("ann", "ben", "cat", "dan"))
    # prospect 7 days; new 53 days (01-08 → 03-01, a leap year); active ongoing
    transitions_record(
        status_model, ann, [("prospect", at("2024-01-01")), ("new", at("2024-01-08")), ("active", at("2024-03-01"))]
    )
    # prospect 6 hours (0 whole days); new 199 days 18 hours (199); inactive ongoing
    transitions_record(
        status_model,
        ben,
        [("prospect", at("2024-01-01")), ("new", at("2024-01-01", 18)), ("inactive", at("2024-07-19"))],
    )
    # prospect ongoing as of 2024-12-31: the move after as_of does not end the stay
    transitions_record(status_model, cat, [("prospect", at("2024-01-01")), ("new", at("2025-01-10"))])
    # classified new at once; new 180 days; inactive 90 days; active ongoing
    transitions_record(
        status_model, dan, [("new", at("2024-01-05")), ("inactive", at("2024-07-03")), ("active", at("2024-10-01"))]
    )


def by_stage(result: dict) -> dict[str, tuple]:
    return {
        row["stage"]: (row["completed"], row["ongoing"], row["median_days"], row["p75_days"], row["p90_days"])
        for row in result["stages"]
    }


def histogram(row: dict) -> dict[str, int]:
    """The non-empty bins of a row, by label."""
    return {b["label"]: n for b, n in zip(bins(), row["histogram"], strict=True) if n}


def test_stays_are_counted_completed_or_ongoing_with_nearest_rank_percentiles(history, status_model):
    result = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))

    assert [row["stage"] for row in result["stages"]] == ["prospect", "new", "active", "inactive", "former"]
    assert by_stage(result) == {
        "prospect": (2, 1, 0, 7, 7),  # [0, 7]: ranks ⌈1⌉, ⌈1.5⌉, ⌈1.8⌉
        "new": (3, 0, 180, 199, 199),  # [53, 180, 199]
        "active": (0, 2, None, None, None),
        "inactive": (1, 1, 90, 90, 90),
        "former": (0, 0, None, None, None),
    }
    rows = {row["stage"]: row for row in result["stages"]}
    assert histogram(rows["prospect"]) == {"0-7": 1, "7-14": 1}
    assert histogram(rows["new"]) == {"30-60": 1, "180-365": 2}
    assert histogram(rows["inactive"]) == {"90-180": 1}
    assert rows["active"]["histogram"] == [0] * 8
    assert result["percentile_method"] == "nearest-rank over whole days"


def test_time_to_convert_runs_from_first_entering_a_step_to_first_entering_the_next(history, status_model):
    result = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))

    prospect_new, new_active = result["conversions"]
    # ann 7 days, ben 0 (6 hours), dan 0 (classified new at once: he entered "prospect or later" and "new or later"
    # at the same moment); cat's move is after as_of
    assert prospect_new == {
        "from_stage": "prospect",
        "to_stage": "new",
        "converted": 3,
        "median_days": 0,
        "p75_days": 7,
        "p90_days": 7,
        "histogram": [2, 1, 0, 0, 0, 0, 0, 0],
    }
    # ann 53 days, dan 270 (his detour through inactive included)
    assert (new_active["converted"], new_active["median_days"], new_active["p90_days"]) == (2, 53, 270)
    assert histogram(new_active) == {"30-60": 1, "180-365": 1}


def test_a_later_as_of_closes_the_stays_that_ended_after_the_earlier_one(history, status_model):
    result = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=at("2025-02-01")))
    # cat's prospect stay: 2024-01-01 → 2025-01-10 = 375 days
    prospect = result["stages"][0]
    assert (prospect["completed"], prospect["ongoing"], prospect["p90_days"]) == (3, 0, 375)
    assert histogram(prospect) == {"0-7": 1, "7-14": 1, "365+": 1}


def test_stays_of_exactly_n_days_land_in_the_bin_starting_at_n(status_model):
    """Backfilled moments are the last microsecond of a day: whole days must not become 6.999… on either database."""
    end_of = "2023-01-01T23:59:59.999999+00:00"
    start = datetime.fromisoformat(end_of)
    for n, days in enumerate([7, 14, 30, 60, 90, 180, 365]):
        transitions_record(
            status_model,
            CustomerFactory(external_id=f"c{n}"),
            [("prospect", start), ("new", start + timedelta(days=days))],
        )
    transitions_record(
        status_model,
        CustomerFactory(external_id="short"),
        [("prospect", start), ("new", start + timedelta(days=7, seconds=-1))],
    )

    prospect = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))["stages"][0]

    assert prospect["histogram"] == [1, 1, 1, 1, 1, 1, 1, 1]
    assert (prospect["median_days"], prospect["p75_days"], prospect["p90_days"]) == (30, 90, 365)


def test_percentiles_follow_the_nearest_rank_method():
    ten = {days: 1 for days in range(1, 11)}
    assert day_statistics(ten) | {"histogram": None} == {
        "count": 10,
        "median_days": 5,  # rank 5
        "p75_days": 8,  # rank ⌈7.5⌉
        "p90_days": 9,  # rank 9
        "histogram": None,
    }
    assert day_statistics({3: 1})["median_days"] == 3
    assert day_statistics({0: 50, 400: 50}) | {"histogram": None} == {
        "count": 100,
        "median_days": 0,
        "p75_days": 400,
        "p90_days": 400,
        "histogram": None,
    }
    assert day_statistics({})["median_days"] is None and day_statistics({})["count"] == 0
    assert [b["label"] for b in bins()] == ["0-7", "7-14", "14-30", "30-60", "60-90", "90-180", "180-365", "365+"]


def test_the_channel_filter_narrows_stays_and_conversions(history, status_model):
    Customer.objects.filter(external_id="dan").update(acquisition_channel=Channel.objects.get(key="email"))

    result = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF, channel="email"))

    assert by_stage(result)["new"] == (1, 0, 180, 180, 180)
    assert [row["converted"] for row in result["conversions"]] == [1, 1]


def test_an_empty_cohort_has_no_stays(history, status_model):
    result = time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF, cohort_end=date(2023, 1, 1)))
    assert all(row["completed"] == row["ongoing"] == 0 and row["median_days"] is None for row in result["stages"])
    assert all(row["converted"] == 0 and row["p90_days"] is None for row in result["conversions"])


def test_time_in_stage_takes_a_fixed_number_of_queries(history, status_model, django_assert_max_num_queries):
    for n in range(20):
        transitions_record(
            status_model, CustomerFactory(), [("prospect", at("2024-02-01")), ("new", at(f"2024-03-{n + 1:02}"))]
        )
    with django_assert_max_num_queries(3):
        time_in_stage_compute(model=status_model, filters=MetricFilters(as_of=AS_OF, channel="email"))
