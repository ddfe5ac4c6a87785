"""The funnel (metrics.funnel) on small transition histories whose answers are worked out by hand.

The `status` model's funnel is prospect (1) → new (2) → active (3); inactive and former are exit stages.
"""

from datetime import UTC, date, datetime, time

import pytest

from lifecycle.models import Channel, Customer, LifecycleModel
from lifecycle.templates import template_install
from metrics.filters import MetricFilters
from metrics.funnel import funnel_compute, funnel_customers
from tests.factories import CustomerFactory, at, transitions_record

pytestmark = pytest.mark.django_db

AS_OF = datetime.combine(date(2024, 12, 31), time.max, UTC)


def customer(external_id: str, first_seen: str = "2024-01-01", channel: str | None = None) -> Customer:
    return CustomerFactory(
        external_id=external_id,
        first_seen_at=at(first_seen, 0),
        acquisition_channel=Channel.objects.get(key=channel) if channel else None,
    )


@pytest.fixture
def history(status_model: LifecycleModel) -> None:
    transitions_record(
        status_model, customer("ann"), [("prospect", "2024-01-01"), ("new", "2024-01-20"), ("active", "2024-03-01")]
    )
    transitions_record(
        status_model, customer("ben"), [("prospect", "2024-01-01"), ("new", "2024-02-15"), ("inactive", "2024-08-14")]
    )
    transitions_record(status_model, customer("cat", "2024-01-05"), [("prospect", "2024-01-05")])
    # dan is first classified as new: he reached prospect too; his detour through inactive hides nothing
    transitions_record(
        status_model,
        customer("dan", "2024-01-05"),
        [("new", "2024-01-05"), ("inactive", "2024-07-04"), ("active", "2024-10-01")],
    )
    # eve's first classification is an exit stage: counted as a customer, reached no step (active is after as_of)
    transitions_record(
        status_model, customer("eve", "2024-01-10"), [("inactive", "2024-01-10"), ("active", "2025-02-01")]
    )
    transitions_record(
        status_model, customer("fay"), [("prospect", "2024-01-01"), ("new", "2025-01-10")]
    )  # new: after as_of
    customer("gil")  # never classified


def steps(result: dict) -> dict[str, tuple]:
    """(reached, converted, conversion, drop-off, biggest drop-off) per step."""
    fields = ("reached", "converted", "conversion", "drop_off", "biggest_drop_off")
    return {step["stage"]: tuple(step[field] for field in fields) for step in result["steps"]}


def drill(model: LifecycleModel, filters: MetricFilters, stage: str, outcome: str) -> set[str]:
    customers = funnel_customers(model=model, filters=filters, stage_key=stage, outcome=outcome)
    return set(customers.values_list("external_id", flat=True))


def test_reached_counts_everyone_who_was_ever_in_the_step_or_a_later_one(history, status_model):
    result = funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))

    assert result["model"] == "status" and result["as_of"] == "2024-12-31T23:59:59.999999+00:00"
    assert result["customers"] == 6  # everyone classified by as_of; gil never was
    assert [step["stage"] for step in result["steps"]] == ["prospect", "new", "active"]
    assert steps(result) == {
        "prospect": (5, 3, 3 / 5, 2, True),
        "new": (3, 2, 2 / 3, 1, False),
        "active": (2, None, None, None, False),
    }
    new = result["steps"][1]
    assert new["drop_off_rate"] == pytest.approx(1 / 3)
    assert (new["name"], new["name_de"], new["position"]) == ("New customer", "Neukunde", 2)


def test_a_detour_through_an_exit_stage_keeps_the_steps_reached(history, status_model):
    filters = MetricFilters(as_of=AS_OF)
    assert drill(status_model, filters, "new", "reached") == {"ann", "ben", "dan"}
    assert drill(status_model, filters, "active", "reached") == {"ann", "dan"}
    assert drill(status_model, filters, "prospect", "reached") == {"ann", "ben", "cat", "dan", "fay"}


def test_events_after_as_of_are_ignored(history, status_model):
    before = funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))
    after = funnel_compute(model=status_model, filters=MetricFilters(as_of=at("2025-03-01")))

    assert [step["reached"] for step in before["steps"]] == [5, 3, 2]
    # by 2025-03-01 fay became new, and eve active (so she reached every step)
    assert [step["reached"] for step in after["steps"]] == [6, 5, 3]
    early = funnel_compute(model=status_model, filters=MetricFilters(as_of=at("2024-01-20", 11)))  # before ann's new
    assert [step["reached"] for step in early["steps"]] == [5, 1, 0] and early["customers"] == 6


def test_a_conversion_window_counts_only_moves_within_n_days_of_entering_the_step(history, status_model):
    filters = MetricFilters(as_of=AS_OF, window_days=30)
    result = funnel_compute(model=status_model, filters=filters)

    # prospect → new within 30 days: ann (19 days), dan (0: classified new at once); ben took 45 days.
    # new → active within 30 days: nobody (ann 41 days, dan 270).
    assert steps(result) == {
        "prospect": (5, 2, 2 / 5, 3, False),
        "new": (3, 0, 0.0, 3, True),
        "active": (2, None, None, None, False),
    }
    assert result["window_days"] == 30 and result["filters"]["window_days"] == 30
    assert drill(status_model, filters, "prospect", "converted") == {"ann", "dan"}
    assert drill(status_model, filters, "prospect", "dropped") == {"ben", "cat", "fay"}


def test_a_move_exactly_n_days_later_is_within_the_window(status_model):
    transitions_record(status_model, customer("hal"), [("prospect", "2024-03-01T12:00"), ("new", "2024-03-31T12:00")])
    transitions_record(
        status_model, customer("ida"), [("prospect", "2024-03-01T12:00"), ("new", "2024-03-31T12:00:00.000001")]
    )

    def converted(days: int) -> int:
        return funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF, window_days=days))["steps"][0][
            "converted"
        ]

    assert (converted(29), converted(30), converted(31)) == (0, 1, 2)


def test_cohort_and_channel_filters_narrow_the_customers(history, status_model):
    Customer.objects.filter(external_id__in=["ann", "cat"]).update(acquisition_channel=Channel.objects.get(key="email"))

    cohort = MetricFilters(as_of=AS_OF, cohort_start=date(2024, 1, 5), cohort_end=date(2024, 1, 10))
    result = funnel_compute(model=status_model, filters=cohort)
    assert result["customers"] == 3  # cat, dan, eve
    assert [step["reached"] for step in result["steps"]] == [2, 1, 1]
    assert result["filters"]["cohort_start"] == "2024-01-05"

    email = MetricFilters(as_of=AS_OF, channel="email")
    assert [step["reached"] for step in funnel_compute(model=status_model, filters=email)["steps"]] == [2, 1, 1]
    assert drill(status_model, email, "prospect", "dropped") == {"cat"}


def test_targets_flag_the_steps_below_their_goal_or_benchmark(history, status_model):
    result = funnel_compute(
        model=status_model,
        filters=MetricFilters(as_of=AS_OF),
        targets={"prospect": (0.7, 0.5), "new": (None, 0.8), "active": (0.9, 0.9)},
    )

    prospect, new, active = result["steps"]
    assert (prospect["goal"], prospect["benchmark"]) == (0.7, 0.5)
    assert (prospect["below_goal"], prospect["below_benchmark"]) == (True, False)  # 0.6
    assert (new["below_goal"], new["below_benchmark"]) == (False, True)  # 2/3, no goal
    assert (active["below_goal"], active["below_benchmark"]) == (False, False)  # no next step: nothing to compare


def test_ties_in_drop_off_rate_flag_the_earliest_step(status_model):
    transitions_record(
        status_model, customer("a"), [("prospect", "2024-01-01"), ("new", "2024-02-01"), ("active", "2024-03-01")]
    )
    transitions_record(status_model, customer("b"), [("prospect", "2024-01-01")])
    transitions_record(status_model, customer("c"), [("prospect", "2024-01-01"), ("new", "2024-02-01")])
    transitions_record(
        status_model, customer("d"), [("prospect", "2024-01-01"), ("new", "2024-02-01"), ("active", "2024-03-01")]
    )

    result = funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))

    assert [step["drop_off_rate"] for step in result["steps"]] == [0.25, pytest.approx(1 / 3), None]
    assert [step["biggest_drop_off"] for step in result["steps"]] == [False, True, False]
    # one more who stops at new, two more who go all the way, three more who stay prospects:
    transitions_record(status_model, customer("e"), [("prospect", "2024-01-01"), ("new", "2024-02-01")])
    transitions_record(status_model, customer("f"), [("prospect", "2024-01-01")])
    transitions_record(
        status_model, customer("g"), [("prospect", "2024-01-01"), ("new", "2024-02-01"), ("active", "2024-03-01")]
    )
    transitions_record(
        status_model, customer("h"), [("prospect", "2024-01-01"), ("new", "2024-02-01"), ("active", "2024-03-01")]
    )
    Customer.objects.filter(external_id="b").delete()  # with its transitions
    transitions_record(status_model, customer("j"), [("prospect", "2024-01-01")])
    transitions_record(status_model, customer("k"), [("prospect", "2024-01-01")])
    # prospect: 9 reached, 6 converted (1/3); new: 6 reached, 4 converted (1/3): the earlier step is flagged
    result = funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))
    assert [(step["reached"], step["converted"]) for step in result["steps"][:2]] == [(9, 6), (6, 4)]
    assert [step["biggest_drop_off"] for step in result["steps"]] == [True, False, False]


def test_an_empty_cohort_gives_a_well_formed_funnel_without_rates(history, status_model):
    filters = MetricFilters(as_of=AS_OF, cohort_start=date(2030, 1, 1))
    result = funnel_compute(model=status_model, filters=filters, targets={"prospect": (0.5, 0.5)})

    assert result["customers"] == 0
    for step in result["steps"]:
        assert step["reached"] == 0
        assert step["conversion"] is None and step["drop_off_rate"] is None
        assert not (step["below_goal"] or step["below_benchmark"] or step["biggest_drop_off"])
    assert [step["drop_off"] for step in result["steps"]] == [0, 0, None]
    assert drill(status_model, filters, "prospect", "reached") == set()


def test_nobody_dropping_off_flags_no_biggest_drop_off(status_model):
    transitions_record(
        status_model, customer("a"), [("prospect", "2024-01-01"), ("new", "2024-02-01"), ("active", "2024-03-01")]
    )
    result = funnel_compute(model=status_model, filters=MetricFilters(as_of=AS_OF))
    assert [step["conversion"] for step in result["steps"]] == [1.0, 1.0, None]
    assert not any(step["biggest_drop_off"] for step in result["steps"])


@pytest.mark.parametrize("window_days", [None, 30])
@pytest.mark.parametrize("channel", [None, "email"])
def test_every_funnel_count_equals_its_drill_down(history, status_model, window_days, channel):
    Customer.objects.filter(external_id__in=["ben", "dan", "cat"]).update(
        acquisition_channel=Channel.objects.get(key="email")
    )
    filters = MetricFilters(as_of=AS_OF, window_days=window_days, channel=channel)
    result = funnel_compute(model=status_model, filters=filters)

    for step in result["steps"]:
        reached = drill(status_model, filters, step["stage"], "reached")
        assert len(reached) == step["reached"]
        if step["converted"] is not None:
            converted = drill(status_model, filters, step["stage"], "converted")
            dropped = drill(status_model, filters, step["stage"], "dropped")
            assert len(converted) == step["converted"] and len(dropped) == step["drop_off"]
            assert converted | dropped == reached and not converted & dropped


def test_a_template_installed_model_has_its_own_funnel(history):
    basic, _ = template_install(key="basic")
    transitions_record(
        basic, Customer.objects.get(external_id="ann"), [("awareness", "2024-01-01"), ("purchase", "2024-01-20")]
    )

    result = funnel_compute(model=basic, filters=MetricFilters(as_of=AS_OF))

    assert [(step["stage"], step["reached"]) for step in result["steps"]] == [
        ("awareness", 1),
        ("interest", 1),  # skipped over, but purchase is a later step
        ("purchase", 1),
        ("retention", 0),
    ]
    assert result["customers"] == 1


def test_drill_down_rejects_unknown_outcomes_exit_stages_and_moves_past_the_last_step(history, status_model):
    filters = MetricFilters(as_of=AS_OF)
    with pytest.raises(ValueError, match="Unknown outcome 'left'"):
        funnel_customers(model=status_model, filters=filters, stage_key="new", outcome="left")
    with pytest.raises(ValueError, match="'inactive' is not a funnel stage"):
        funnel_customers(model=status_model, filters=filters, stage_key="inactive", outcome="reached")
    with pytest.raises(ValueError, match="last funnel step"):
        funnel_customers(model=status_model, filters=filters, stage_key="active", outcome="converted")


def test_the_funnel_takes_a_fixed_number_of_queries(history, status_model, django_assert_max_num_queries):
    for n in range(20):
        transitions_record(status_model, customer(f"extra-{n}"), [("prospect", "2024-02-01"), ("new", "2024-03-01")])
    filters = MetricFilters(as_of=AS_OF, window_days=30, channel="email")
    with django_assert_max_num_queries(2):
        funnel_compute(model=status_model, filters=filters)
    with django_assert_max_num_queries(2):
        list(funnel_customers(model=status_model, filters=filters, stage_key="new", outcome="dropped"))
