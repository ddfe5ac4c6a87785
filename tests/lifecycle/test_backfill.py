"""Backfill (lifecycle.backfill, `manage.py backfill`, the `backfill_model` task).

The expected paths below were worked out by hand from SPEC §3's `status` rules (former: last order more than
365 days ago; inactive: more than 180; active: ≥ 2 orders; new: 1 order; else prospect), with each change
recorded at the end (23:59:59.999999 UTC) of the day, or of the week counted from the start, in which it happens.
"""

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lifecycle import backfill as backfill_module
from lifecycle.backfill import BackfillError, BackfillStep, backfill_moments, model_backfill
from lifecycle.cdnow import CdnowFormat, cdnow_default_path, cdnow_import
from lifecycle.models import (
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    OrderStatus,
    RunKind,
    RunStatus,
    StageTransition,
    TransitionCause,
)
from lifecycle.rules import classification_queryset
from lifecycle.services import model_reclassify
from lifecycle.tasks import backfill_model
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

START, END = date(2024, 1, 1), date(2025, 3, 31)  # 456 days: 456 daily steps, 66 weekly (the last one a day long)

DAILY_PATHS = {
    "alice": [(None, "new", "2024-01-03"), ("new", "active", "2024-03-01"), ("active", "inactive", "2024-08-29"),
              ("inactive", "former", "2025-03-02")],
    "bob": [(None, "prospect", "2024-01-10"), ("prospect", "new", "2024-02-15"), ("new", "inactive", "2024-08-14"),
            ("inactive", "former", "2025-02-15")],
    "carol": [(None, "prospect", "2024-05-20")],
    "dan": [(None, "new", "2024-01-05"), ("new", "inactive", "2024-07-04"), ("inactive", "active", "2024-10-01"),
            ("active", "inactive", "2025-03-31")],
    "erin": [(None, "prospect", "2024-02-01")],
}  # fmt: skip

WEEKLY_PATHS = {  # weeks from Monday 2024-01-01: each change at the Sunday ending its week
    "alice": [(None, "new", "2024-01-07"), ("new", "active", "2024-03-03"), ("active", "inactive", "2024-09-01"),
              ("inactive", "former", "2025-03-02")],
    "bob": [(None, "prospect", "2024-01-14"), ("prospect", "new", "2024-02-18"), ("new", "inactive", "2024-08-18"),
            ("inactive", "former", "2025-02-16")],
    "carol": [(None, "prospect", "2024-05-26")],
    "dan": [(None, "new", "2024-01-07"), ("new", "inactive", "2024-07-07"), ("inactive", "active", "2024-10-06"),
            ("active", "inactive", "2025-03-31")],  # the last, one-day "week"
    "erin": [(None, "prospect", "2024-02-04")],
}  # fmt: skip


@pytest.fixture
def status_model() -> LifecycleModel:
    return LifecycleModel.objects.get(key="status")


@pytest.fixture
def history() -> None:
    alice = CustomerFactory(external_id="alice", first_seen_at=at("2024-01-03", 9))
    OrderFactory(customer=alice, placed_at=at("2024-01-03", 9))
    OrderFactory(customer=alice, placed_at=at("2024-03-01", 14))
    bob = CustomerFactory(external_id="bob", first_seen_at=at("2024-01-10", 12))  # signs up, orders a month later
    OrderFactory(customer=bob, placed_at=at("2024-02-15", 8))
    CustomerFactory(external_id="carol", first_seen_at=at("2024-05-20", 10))  # never orders
    dan = CustomerFactory(external_id="dan", first_seen_at=at("2024-01-05", 11))  # lapses, then comes back
    OrderFactory(customer=dan, placed_at=at("2024-01-05", 11))
    OrderFactory(customer=dan, placed_at=at("2024-10-01", 16))
    erin = CustomerFactory(external_id="erin", first_seen_at=at("2024-02-01", 10))  # only a cancelled order
    OrderFactory(customer=erin, placed_at=at("2024-02-01", 10), status=OrderStatus.CANCELLED)
    frank = CustomerFactory(external_id="frank", first_seen_at=at("2025-06-01"))  # first seen after the range
    OrderFactory(customer=frank, placed_at=at("2025-06-01"))


def end_of(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.max, tzinfo=UTC)


def log(model: LifecycleModel) -> list[tuple]:
    return list(
        StageTransition.objects.filter(model=model)
        .order_by("customer__external_id", "at", "id")
        .values_list("customer__external_id", "from_stage__key", "to_stage__key", "at", "cause")
    )


def paths(model: LifecycleModel) -> dict[str, list[tuple]]:
    """Each customer's path as (from, to, day); every transition must be a backfill at the end of a day."""
    result: dict[str, list[tuple]] = {}
    for customer, from_key, to_key, moment, cause in log(model):
        assert cause == TransitionCause.BACKFILL
        assert moment == end_of(moment.date().isoformat()), f"{customer}: {moment} is not the end of a day"
        result.setdefault(customer, []).append((from_key, to_key, moment.date().isoformat()))
    return result


def current(model: LifecycleModel) -> dict[str, tuple[str, datetime]]:
    rows = CustomerStage.objects.filter(model=model).values_list("customer__external_id", "stage__key", "since")
    return {customer: (stage, since) for customer, stage, since in rows}


def backfill(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("backfill", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the reconstructed paths ----------------------------------------------------------------------


def test_daily_backfill_records_each_customers_path_at_the_end_of_the_day_of_each_change(history, status_model):
    result = model_backfill(model=status_model, start=START, end=END, step=BackfillStep.DAY)

    assert paths(status_model) == DAILY_PATHS
    assert result.steps == 456 and result.transitions == 14 and result.replaced == 0
    runs = ClassificationRun.objects.filter(model=status_model)
    assert runs.count() == 456
    assert set(runs.values_list("kind", "status")) == {(RunKind.BACKFILL, RunStatus.COMPLETED)}


def test_weekly_backfill_records_each_change_at_the_end_of_its_week(history, status_model):
    out, _ = backfill("--model", "status", "--start", "2024-01-01", "--end", "2025-03-31", "--step", "week")

    assert paths(status_model) == WEEKLY_PATHS
    assert "status backfilled weekly from 2024-01-01 to 2025-03-31: 66 steps, 14 transitions written" in out
    as_of = sorted(ClassificationRun.objects.filter(model=status_model).values_list("as_of", flat=True))
    assert as_of[:2] == [end_of("2024-01-07"), end_of("2024-01-14")] and as_of[-2:] == [
        end_of("2025-03-30"),
        end_of("2025-03-31"),
    ]


def test_customers_first_seen_after_a_step_are_not_classified_at_that_step(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)

    evaluated = dict(ClassificationRun.objects.filter(model=status_model).values_list("as_of", "customers_evaluated"))
    assert evaluated[end_of("2024-01-07")] == 2  # alice and dan; bob is first seen on 01-10
    assert evaluated[end_of("2024-05-19")] == 4  # carol is first seen on 05-20
    assert evaluated[end_of("2024-05-26")] == 5
    assert evaluated[end_of("2025-03-31")] == 5  # frank (first seen 2025-06-01) never
    assert not StageTransition.objects.filter(customer__external_id="frank").exists()


def test_step_moments_are_the_end_of_each_period_counted_from_the_start():
    weekly = backfill_moments(start=date(1997, 1, 1), end=date(1998, 6, 30), step=BackfillStep.WEEK)
    assert len(weekly) == 78
    assert weekly[0] == end_of("1997-01-07") and weekly[-1] == end_of("1998-06-30")
    assert backfill_moments(start=date(2024, 1, 1), end=date(2024, 1, 9), step=BackfillStep.WEEK) == [
        end_of("2024-01-07"),
        end_of("2024-01-09"),
    ]
    assert backfill_moments(start=date(2024, 1, 1), end=date(2024, 1, 1), step=BackfillStep.DAY) == [
        end_of("2024-01-01")
    ]


# --- the current stage afterwards --------------------------------------------------------------------


def test_afterwards_current_stages_are_those_as_of_the_end_not_as_of_now(history, status_model):
    result = model_backfill(model=status_model, start=START, end=date(2024, 12, 31), step=BackfillStep.WEEK)

    assert result.current_as_of == end_of("2024-12-31")
    # as of now alice and bob would be former customers; the backfill does not classify as of now
    assert current(status_model) == {
        "alice": ("inactive", end_of("2024-09-01")),
        "bob": ("inactive", end_of("2024-08-18")),
        "carol": ("prospect", end_of("2024-05-26")),
        "dan": ("active", end_of("2024-10-06")),
        "erin": ("prospect", end_of("2024-02-04")),
    }
    # … and the next ordinary run moves them on from there, continuing the log
    model_reclassify(model=status_model, kind=RunKind.PERIODIC)
    assert current(status_model)["alice"][0] == "former"
    latest = StageTransition.objects.filter(customer__external_id="alice").latest("at", "id")
    assert (latest.from_stage.key, latest.to_stage.key, latest.cause) == ("inactive", "former", "periodic")


def test_current_stages_follow_the_latest_transition_when_the_log_continues_after_the_end(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    result = model_backfill(model=status_model, start=START, end=date(2024, 6, 30), step=BackfillStep.WEEK)

    assert result.current_as_of is None and result.later_transitions == 7 and result.later_mismatches == 0
    assert paths(status_model) == WEEKLY_PATHS
    assert current(status_model)["alice"] == ("former", end_of("2025-03-02"))
    assert current(status_model)["dan"] == ("inactive", end_of("2025-03-31"))


# --- replacing: idempotence, sub-ranges, interruptions -----------------------------------------------


def test_running_the_same_backfill_again_gives_the_same_log(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    first, first_current = log(status_model), current(status_model)

    again = model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)

    assert again.replaced == 14 and again.transitions == 14
    assert log(status_model) == first and current(status_model) == first_current


def test_a_backfill_of_a_sub_range_replaces_only_that_range(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    before = log(status_model)
    OrderFactory(customer=Customer.objects.get(external_id="carol"), placed_at=at("2024-06-12"))

    result = model_backfill(model=status_model, start=date(2024, 6, 3), end=date(2024, 6, 30), step=BackfillStep.WEEK)

    def in_june(row: tuple) -> bool:
        return datetime(2024, 6, 3, tzinfo=UTC) <= row[3] <= end_of("2024-06-30")

    after = log(status_model)
    assert [row for row in after if not in_june(row)] == [row for row in before if not in_june(row)]
    assert [row[:3] + (row[3],) for row in after if in_june(row)] == [
        ("carol", "prospect", "new", end_of("2024-06-16"))  # the new order, found at the end of its week
    ]
    assert result.replaced == 0 and result.transitions == 1 and result.later_mismatches == 0
    assert current(status_model)["carol"] == ("new", end_of("2024-06-16"))


def test_a_sub_range_at_another_step_reports_customers_whose_later_history_does_not_continue(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)

    result = model_backfill(model=status_model, start=date(2024, 8, 1), end=date(2024, 8, 31), step=BackfillStep.DAY)

    assert paths(status_model)["bob"][2] == ("new", "inactive", "2024-08-14")  # the weekly 08-18 row was replaced
    # alice turns inactive on 08-29 by day, but the weekly row active → inactive of 09-01 lies after the range
    assert paths(status_model)["alice"][2:4] == [
        ("active", "inactive", "2024-08-29"),
        ("active", "inactive", "2024-09-01"),
    ]
    assert result.later_mismatches == 1


def test_an_interrupted_backfill_leaves_a_consistent_log_and_running_it_again_converges(
    history, status_model, monkeypatch
):
    execute = backfill_module.classification_run_execute

    def crash_at_march(*, run):
        if run.as_of >= end_of("2024-03-01"):
            raise RuntimeError("worker lost")
        return execute(run=run)

    monkeypatch.setattr(backfill_module, "classification_run_execute", crash_at_march)
    with pytest.raises(RuntimeError):
        model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    # the steps that ran (up to 2024-02-25) are complete, and the current stages are those of the last of them
    assert paths(status_model) == {
        "alice": WEEKLY_PATHS["alice"][:1],
        "bob": WEEKLY_PATHS["bob"][:2],
        "dan": WEEKLY_PATHS["dan"][:1],
        "erin": WEEKLY_PATHS["erin"],
    }
    assert current(status_model)["bob"] == ("new", end_of("2024-02-18"))

    monkeypatch.setattr(backfill_module, "classification_run_execute", execute)
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    assert paths(status_model) == WEEKLY_PATHS


def test_transitions_of_other_causes_inside_the_range_are_kept_and_reported(history, status_model):
    model_reclassify(model=status_model, kind=RunKind.FULL, as_of=end_of("2024-06-30"))

    out, err = backfill("--model", "status", "--start", "2024-01-01", "--end", "2025-03-31")

    assert StageTransition.objects.filter(cause=TransitionCause.MANUAL).count() == 5
    assert "Warning: 5 transitions of other causes" in err


def test_the_number_of_queries_grows_with_steps_not_with_customers(history, status_model):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            model_backfill(model=status_model, start=START, end=date(2024, 3, 31), step=BackfillStep.WEEK)
        return len(captured)

    few = queries()
    for n in range(30):
        OrderFactory(
            customer=CustomerFactory(first_seen_at=at("2024-01-02")), placed_at=at("2024-02-0" + str(n % 9 + 1))
        )
    assert queries() <= few + 13  # 13 steps; a step that writes transitions adds its upsert, never one per customer


# --- progress, task, command output ---------------------------------------------------------------


def test_progress_is_reported_after_each_step(history, status_model):
    seen = []
    model_backfill(
        model=status_model,
        start=date(2024, 1, 1),
        end=date(2024, 1, 31),
        step=BackfillStep.WEEK,
        on_progress=lambda done, total, run: seen.append((done, total, run.as_of.date().isoformat())),
    )
    assert seen == [
        (1, 5, "2024-01-07"),
        (2, 5, "2024-01-14"),
        (3, 5, "2024-01-21"),
        (4, 5, "2024-01-28"),
        (5, 5, "2024-01-31"),
    ]


def test_the_celery_task_runs_the_backfill(history, status_model):
    result = backfill_model.apply(args=[status_model.pk, "2024-01-01", "2025-03-31", "week"]).get()

    assert result == {
        "model": "status",
        "steps": 66,
        "transitions": 14,
        "replaced": 0,
        "current_as_of": "2025-03-31T23:59:59.999999+00:00",
    }
    assert paths(status_model) == WEEKLY_PATHS


def test_the_command_says_what_the_current_stages_are_afterwards(history):
    out, _ = backfill("--model", "status", "--start", "2024-01-01", "--end", "2024-12-31")
    assert "status backfilled weekly from 2024-01-01 to 2024-12-31: 53 steps" in out
    assert "Current stages are as of 2024-12-31 (end of day UTC)" in out


# --- bad input: a clear error and nothing written ---------------------------------------------------


def nothing_written() -> bool:
    return not (
        StageTransition.objects.exists() or CustomerStage.objects.exists() or ClassificationRun.objects.exists()
    )


def test_start_after_end_is_an_error_and_nothing_is_written(history):
    with pytest.raises(CommandError, match="The start 2024-03-01 is after the end 2024-02-01"):
        backfill("--model", "status", "--start", "2024-03-01", "--end", "2024-02-01")
    assert nothing_written()


def test_start_after_end_leaves_an_existing_history_alone(history, status_model):
    model_backfill(model=status_model, start=START, end=END, step=BackfillStep.WEEK)
    before, before_current = log(status_model), current(status_model)
    with pytest.raises(BackfillError):
        model_backfill(model=status_model, start=END, end=START, step=BackfillStep.WEEK)
    assert log(status_model) == before and current(status_model) == before_current


@pytest.mark.parametrize("value", ["2024-13-01", "yesterday", "01/02/2024", "2024-1-1x", ""])
def test_unparseable_dates_are_rejected(history, value):
    with pytest.raises(CommandError, match=r"--start .* is not a date in the form YYYY-MM-DD"):
        backfill("--model", "status", "--start", value, "--end", "2024-02-01")
    assert nothing_written()


def test_an_unknown_model_is_rejected(history):
    with pytest.raises(CommandError, match="Unknown model 'nope'; known: status"):
        backfill("--model", "nope", "--start", "2024-01-01", "--end", "2024-02-01")
    assert nothing_written()


def test_an_unknown_step_is_rejected(history):
    with pytest.raises(CommandError, match="invalid choice: 'month'"):
        backfill("--model", "status", "--start", "2024-01-01", "--end", "2024-02-01", "--step", "month")


def test_the_range_must_end_before_today(history, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # "today" here is the command's today, even at midnight
    today = timezone.now().date()
    with pytest.raises(CommandError, match="must be before today"):
        backfill("--model", "status", "--start", "2024-01-01", "--end", today.isoformat())
    assert nothing_written()
    yesterday = (today - timedelta(days=1)).isoformat()
    backfill("--model", "status", "--start", (today - timedelta(days=3)).isoformat(), "--end", yesterday)


def test_a_model_that_cannot_classify_is_rejected(history, status_model):
    LifecycleModel.objects.filter(pk=status_model.pk).update(fallback_stage=None)
    with pytest.raises(CommandError, match="status cannot be backfilled: fallback_stage"):
        backfill("--model", "status", "--start", "2024-01-01", "--end", "2024-02-01")
    assert nothing_written()


# --- the CDNOW sample end to end ------------------------------------------------------------------


def test_weekly_cdnow_backfill_ends_where_a_direct_classification_as_of_the_end_date_is(status_model):
    cdnow_import(path=cdnow_default_path(CdnowFormat.SAMPLE))

    result = model_backfill(model=status_model, start=date(1997, 1, 1), end=date(1998, 6, 30), step=BackfillStep.WEEK)

    assert result.steps == 78
    as_of = end_of("1998-06-30")
    direct = dict(classification_queryset(status_model, as_of).values_list("id", "target_stage_id"))
    assert len(direct) == 2357
    last_backfilled = {}
    for customer_id, stage_id in (
        StageTransition.objects.filter(model=status_model)
        .order_by("at", "id")
        .values_list("customer_id", "to_stage_id")
    ):
        last_backfilled[customer_id] = stage_id
    assert last_backfilled == direct
    assert dict(CustomerStage.objects.filter(model=status_model).values_list("customer_id", "stage_id")) == direct
    # every customer's path is a chain: each transition starts where the previous one ended
    previous: dict[int, int | None] = {}
    for customer_id, from_id, to_id in (
        StageTransition.objects.filter(model=status_model)
        .order_by("customer_id", "at", "id")
        .values_list("customer_id", "from_stage_id", "to_stage_id")
    ):
        assert from_id == previous.get(customer_id) and from_id != to_id
        previous[customer_id] = to_id
