"""The daily pipeline series (metrics.pipeline) against the per-moment count of lifecycle.selectors."""

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from lifecycle.models import LifecycleModel, Stage
from lifecycle.selectors import stage_counts_as_of
from lifecycle.templates import template_install
from metrics.pipeline import pipeline_daily_counts
from tests.factories import CustomerFactory, at, transitions_record

pytestmark = pytest.mark.django_db

# microseconds into a day: midnight, just after, noon, the last microsecond (the edges of a day's bucket)
TIMES_OF_DAY = [0, 1, 43_200_000_000, 86_399_999_999]


def by_key(model: LifecycleModel, rows: list[tuple[date, int, int]]) -> dict[str, dict[str, int]]:
    keys = dict(Stage.objects.filter(model=model).values_list("pk", "key"))
    result: dict[str, dict[str, int]] = {}
    for day, stage_id, count in rows:
        result.setdefault(day.isoformat(), {})[keys[stage_id]] = count
    return result


def test_each_day_counts_the_customers_in_each_stage_at_its_end(status_model):
    transitions_record(status_model, CustomerFactory(), [("prospect", at("2024-01-01")), ("new", at("2024-01-03", 0))])
    transitions_record(
        status_model, CustomerFactory(), [("new", at("2024-01-02", 8)), ("active", at("2024-01-02", 20))]
    )
    transitions_record(status_model, CustomerFactory(), [("prospect", at("2024-01-05"))])  # after the range

    rows = pipeline_daily_counts(model=status_model, start=date(2024, 1, 2), end=date(2024, 1, 4))

    zero = {"prospect": 0, "new": 0, "active": 0, "inactive": 0, "former": 0}
    assert by_key(status_model, rows) == {
        "2024-01-02": zero | {"prospect": 1, "active": 1},  # the first one from before the range; new for 12 hours
        "2024-01-03": zero | {"new": 1, "active": 1},  # moved at midnight
        "2024-01-04": zero | {"new": 1, "active": 1},
    }
    assert [row[0] for row in rows[:5]] == [date(2024, 1, 2)] * 5  # by day, then funnel order
    assert [row[1] for row in rows[:5]] == list(
        Stage.objects.filter(model=status_model).order_by("position").values_list("pk", flat=True)
    )


def test_the_series_equals_the_stage_counts_as_of_the_end_of_every_day(status_model):
    rng = random.Random(20240101)
    keys = ["prospect", "new", "active", "inactive", "former"]
    first = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(25):
        moments = sorted(
            first + timedelta(days=rng.randrange(0, 90), microseconds=rng.choice(TIMES_OF_DAY))
            for _ in range(rng.randrange(1, 6))
        )
        path, previous = [], None
        for moment in moments:
            key = rng.choice([k for k in keys if k != previous])
            path.append((key, moment))
            previous = key
        transitions_record(status_model, CustomerFactory(external_id=f"r{n}"), path)
    # a second model's log must not leak in
    basic, _ = template_install(key="basic")
    transitions_record(basic, CustomerFactory(), [("awareness", at("2024-02-01")), ("purchase", at("2024-02-02"))])

    start, end = date(2024, 1, 20), date(2024, 3, 10)
    rows = pipeline_daily_counts(model=status_model, start=start, end=end)

    stage_ids = list(Stage.objects.filter(model=status_model).values_list("pk", flat=True))
    assert len(rows) == ((end - start).days + 1) * len(stage_ids)
    series: dict[date, dict[int, int]] = {}
    for day, stage_id, count in rows:
        series.setdefault(day, {})[stage_id] = count
    for day, counts in series.items():
        expected = stage_counts_as_of(model=status_model, as_of=datetime.combine(day, time.max, UTC))
        assert counts == {stage_id: expected.get(stage_id, 0) for stage_id in stage_ids}, day
    assert any(sum(counts.values()) for counts in series.values())


def test_an_empty_log_gives_zeros_and_a_reversed_range_nothing(status_model):
    rows = pipeline_daily_counts(model=status_model, start=date(2024, 1, 1), end=date(2024, 1, 2))
    assert len(rows) == 10 and {count for _, _, count in rows} == {0}
    assert pipeline_daily_counts(model=status_model, start=date(2024, 1, 2), end=date(2024, 1, 1)) == []


def test_the_series_takes_a_fixed_number_of_queries(status_model, django_assert_max_num_queries):
    for n in range(20):
        transitions_record(
            status_model, CustomerFactory(), [("prospect", at("2024-01-01")), ("new", at(f"2024-01-{n + 2:02}"))]
        )
    with django_assert_max_num_queries(3):
        pipeline_daily_counts(model=status_model, start=date(2023, 12, 1), end=date(2024, 12, 31))
