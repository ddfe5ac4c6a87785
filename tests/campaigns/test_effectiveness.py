"""Channel effectiveness on a small hand-made history of the `status` model.

Period: March 2024 (the API's start=2024-03-01&end=2024-03-31), read as of 30 June 2024, window 30 days. Moments
are noon UTC unless said otherwise. Touchpoints are email unless said otherwise.

prospect (funnel 1):
  ann  prospect 02-01, new 03-10; email 03-05                       treated: 5 days to new → advanced
  ben  prospect 02-15, new 04-20; email 03-20 and 03-25             treated from the FIRST touch: 31 days → not
  cat  prospect 02-20, new 04-01; email 03-02                       treated: exactly 30 days → advanced
  dan  prospect 01-01, new 03-15                                    untreated from start (03-01 00:00): 14.5 days
  eve  prospect 01-01; paid ads 03-12                               never leaves
  fay  prospect 01-01, new 03-03; email 02-25 (before the period)   untreated: 2.5 days → advanced
  gus  prospect 03-05, new 04-03; email 04-02 (after the period)    untreated from entering: 29 days → advanced
inactive (exit 4):
  hal  new 2023-06-01, inactive 02-01, active 03-20; email 03-10   treated: back to a funnel stage → advanced
  ida  new 2023-06-01, inactive 02-01, former 03-15; email 03-10   treated: exit → exit is no advance
  jon  new 2023-06-01, inactive 02-01, active 03-25                untreated from start: 24.5 days → advanced
"""

import json
import math
from datetime import UTC, datetime

import pytest

from campaigns.effectiveness import channel_effectiveness_compute
from lifecycle.models import Channel, LifecycleModel
from tests.conftest import error_fields
from tests.factories import CustomerFactory, TouchpointFactory, at, transitions_record

pytestmark = pytest.mark.django_db

START = datetime(2024, 3, 1, tzinfo=UTC)
END = datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
AS_OF = at("2024-06-30")
Z95 = 1.959964  # the 97.5 % quantile of the standard normal distribution (printed tables)


def touch(customer, day: str, channel: str = "email") -> None:
    TouchpointFactory(customer=customer, occurred_at=at(day), channel=Channel.objects.get(key=channel))


def person(model: LifecycleModel, name: str, path: list[tuple[str, str]], touches: list[tuple[str, str]] = ()):
    customer = CustomerFactory(external_id=name)
    transitions_record(model, customer, path)
    for day, channel in touches:
        touch(customer, day, channel)
    return customer


@pytest.fixture
def status_model(db) -> LifecycleModel:
    return LifecycleModel.objects.get(key="status")  # installed by the post_migrate hook, the default model


@pytest.fixture
def history(status_model):
    m = status_model
    person(m, "ann", [("prospect", "2024-02-01"), ("new", "2024-03-10")], [("2024-03-05", "email")])
    person(
        m,
        "ben",
        [("prospect", "2024-02-15"), ("new", "2024-04-20")],
        [("2024-03-20", "email"), ("2024-03-25", "email")],
    )
    person(m, "cat", [("prospect", "2024-02-20"), ("new", "2024-04-01")], [("2024-03-02", "email")])
    person(m, "dan", [("prospect", "2024-01-01"), ("new", "2024-03-15")])
    person(m, "eve", [("prospect", "2024-01-01")], [("2024-03-12", "paid_ads")])
    person(m, "fay", [("prospect", "2024-01-01"), ("new", "2024-03-03")], [("2024-02-25", "email")])
    person(m, "gus", [("prospect", "2024-03-05"), ("new", "2024-04-03")], [("2024-04-02", "email")])
    person(
        m,
        "hal",
        [("new", "2023-06-01"), ("inactive", "2024-02-01"), ("active", "2024-03-20")],
        [("2024-03-10", "email")],
    )
    person(
        m,
        "ida",
        [("new", "2023-06-01"), ("inactive", "2024-02-01"), ("former", "2024-03-15")],
        [("2024-03-10", "email")],
    )
    person(m, "jon", [("new", "2023-06-01"), ("inactive", "2024-02-01"), ("active", "2024-03-25")])
    return m


def cells(result: dict) -> dict[tuple[str, str], dict]:
    return {(cell["stage"], cell["channel"]): cell for cell in result["cells"]}


def counts(cell: dict) -> tuple[int, int, int, int]:
    return cell["treated"], cell["treated_advanced"], cell["untreated"], cell["untreated_advanced"]


def test_treated_and_untreated_customers_are_counted_from_the_first_touch_and_the_period_start(history):
    result = channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF)
    by_cell = cells(result)
    # Treated: ann (5 days), ben (31 days from his first touch: not), cat (exactly 30 days: advanced).
    # Untreated: dan, eve (never moves), fay (her email came before the period), gus (his after it).
    assert counts(by_cell["prospect", "email"]) == (3, 2, 4, 3)
    assert by_cell["prospect", "email"]["treated_share"] == pytest.approx(2 / 3)
    assert by_cell["prospect", "email"]["untreated_share"] == pytest.approx(3 / 4)
    # Paid ads touched only eve. As untreated, ann, dan, fay and gus advance within 30 days of the period start
    # (or of gus's entering); ben and cat need more than 30 days from 1 March.
    assert counts(by_cell["prospect", "paid_ads"]) == (1, 0, 6, 4)
    assert counts(by_cell["prospect", "direct"]) == (0, 0, 7, 4)
    # In `new` during March: ann, dan, fay, none of them moved on.
    assert counts(by_cell["new", "email"]) == (0, 0, 3, 0)
    assert counts(by_cell["active", "email"]) == (0, 0, 2, 0)  # hal from 20 March, jon from 25 March
    assert counts(by_cell["former", "email"]) == (0, 0, 1, 0)  # ida from 15 March


def test_from_an_exit_stage_any_funnel_stage_counts_as_advancing_and_another_exit_stage_does_not(history):
    by_cell = cells(channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF))
    # hal went inactive → active (a lower position, but a funnel stage), ida inactive → former (an exit stage).
    assert counts(by_cell["inactive", "email"]) == (2, 1, 1, 1)
    assert counts(by_cell["inactive", "app_notifications"]) == (0, 0, 3, 2)


def test_a_shorter_window_counts_fewer_advances(history):
    by_cell = cells(channel_effectiveness_compute(model=history, start=START, end=END, window_days=10, as_of=AS_OF))
    # Treated: ann 5 days (yes), ben 31, cat 30 (no). Untreated: dan 14.5, fay 2.5 (yes), gus 29, eve never.
    assert counts(by_cell["prospect", "email"]) == (3, 1, 4, 1)
    assert counts(by_cell["inactive", "email"]) == (2, 1, 1, 0)  # hal 10 days exactly; jon 24.5 days


def test_as_of_hides_later_transitions_and_touchpoints(history):
    as_of = at("2024-03-12")
    by_cell = cells(channel_effectiveness_compute(model=history, start=START, end=END, as_of=as_of))
    # ann advanced on 10 March; cat's move on 1 April has not happened yet; ben's touch (20 March) neither.
    # Untreated: ben, dan, eve, gus still in prospect; fay advanced on 3 March.
    assert counts(by_cell["prospect", "email"]) == (2, 1, 5, 1)


def test_the_difference_has_a_wald_interval_computed_by_hand(history):
    by_cell = cells(channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF))
    cell = by_cell["prospect", "email"]
    p1, p2 = 2 / 3, 3 / 4
    spread = Z95 * math.sqrt(p1 * (1 - p1) / 3 + p2 * (1 - p2) / 4)
    assert cell["difference"] == pytest.approx(-1 / 12)
    assert cell["ci_low"] == pytest.approx(-1 / 12 - spread, abs=1e-5)
    assert cell["ci_high"] == pytest.approx(-1 / 12 + spread, abs=1e-5)
    assert cell["ci_low"] == pytest.approx(-0.764963, abs=1e-5)  # 0.347778 × 1.959964 = 0.681630 either side
    assert cell["ci_high"] == pytest.approx(0.598297, abs=1e-5)


def test_the_interval_is_clipped_to_minus_one_and_empty_groups_give_nulls(history):
    by_cell = cells(channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF))
    inactive = by_cell["inactive", "email"]  # 1/2 against 1/1: −0.5 ± 1.96 × √(0.25 / 2) = −0.5 ± 0.693
    assert inactive["difference"] == pytest.approx(-0.5)
    assert inactive["ci_low"] == -1.0
    assert inactive["ci_high"] == pytest.approx(-0.5 + Z95 * math.sqrt(0.125), abs=1e-5)
    untouched = by_cell["prospect", "direct"]
    assert untouched["treated_share"] is None
    assert (untouched["difference"], untouched["ci_low"], untouched["ci_high"]) == (None, None, None)


def test_a_customer_counts_once_per_stage_judged_on_the_stay_of_their_first_touch(status_model):
    # kim: inactive 2 March → active 6 March (4 days) → inactive 20 March, email on 25 March, former 1 June.
    person(
        status_model,
        "kim",
        [("active", "2023-01-01"), ("inactive", "2024-03-02"), ("active", "2024-03-06"), ("inactive", "2024-03-20")]
        + [("former", "2024-06-01")],
        [("2024-03-25", "email")],
    )
    by_cell = cells(channel_effectiveness_compute(model=status_model, start=START, end=END, as_of=AS_OF))
    # Email: the second stay is judged (to former, an exit stage): not advanced.
    assert counts(by_cell["inactive", "email"]) == (1, 0, 0, 0)
    # Untreated for app notifications: the first stay in the period is judged (back to active after 4 days).
    assert counts(by_cell["inactive", "app_notifications"]) == (0, 0, 1, 1)
    # In active until 2 March (the first stay in the period), then to inactive, an exit stage: no advance.
    assert counts(by_cell["active", "email"]) == (0, 0, 1, 0)
    assert counts(by_cell["former", "email"]) == (0, 0, 0, 0)  # former only from 1 June


def test_the_result_is_json_serializable_and_lists_stages_in_funnel_order(history):
    result = channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF)
    assert json.loads(json.dumps(result)) == result
    assert [stage["key"] for stage in result["stages"]] == ["prospect", "new", "active", "inactive", "former"]
    channels = list(Channel.objects.filter(active=True).order_by("key").values_list("key", flat=True))
    assert [channel["key"] for channel in result["channels"]] == channels
    assert len(result["cells"]) == 5 * len(channels)
    assert (result["start"], result["window_days"], result["model"]) == (START.isoformat(), 30, "status")


def test_inactive_channels_are_no_columns(history):
    Channel.objects.filter(key="direct").update(active=False)
    result = channel_effectiveness_compute(model=history, start=START, end=END, as_of=AS_OF)
    assert "direct" not in {cell["channel"] for cell in result["cells"]}


def test_bad_arguments_raise_value_errors(status_model):
    with pytest.raises(ValueError, match="before start"):
        channel_effectiveness_compute(model=status_model, start=END, end=START)
    with pytest.raises(ValueError, match="window_days"):
        channel_effectiveness_compute(model=status_model, start=START, end=END, window_days=0)


def test_queries_do_not_grow_with_the_customers(status_model, django_assert_max_num_queries):
    for n in range(40):
        person(
            status_model,
            f"p{n}",
            [("prospect", "2024-02-01"), ("new", f"2024-03-{1 + n % 28:02d}")],
            [(f"2024-03-{1 + n % 20:02d}", "email"), ("2024-03-02", "paid_ads")],
        )
    with django_assert_max_num_queries(3):
        channel_effectiveness_compute(model=status_model, start=START, end=END, as_of=AS_OF)


# --- API ------------------------------------------------------------------------------------------


def get(client, **params):
    return client.get("/api/v1/campaigns/effectiveness/", params)


def test_the_api_answers_the_same_cells_for_a_march_period(history, reader):
    response = get(reader, model="status", start="2024-03-01", end="2024-03-31", window_days=30)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["start"] == START.isoformat() and body["end"] == END.isoformat()
    assert list(body["stages"][0].items()) == [
        ("key", "prospect"),
        ("name", "Prospect"),
        ("kind", "funnel"),
        ("position", 1),
    ]
    by_cell = cells(body)
    assert counts(by_cell["prospect", "email"]) == (3, 2, 4, 3)
    assert counts(by_cell["inactive", "email"]) == (2, 1, 1, 1)


def test_the_api_defaults_to_the_default_model_the_last_90_days_and_30_days(history, reader, time_machine):
    time_machine.move_to(datetime.now(UTC), tick=False)  # "today" here is the API's today, even at midnight
    body = get(reader).json()
    assert body["model"] == "status" and body["window_days"] == 30
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert (end.date() - start.date()).days == 89
    assert end.date() == datetime.now(UTC).date()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2024-13-01"}, "start"),
        ({"start": "1 March"}, "start"),
        ({"end": "2024-02-30"}, "end"),
        ({"start": "2024-03-10", "end": "2024-03-01"}, "end"),
        ({"window_days": "0"}, "window_days"),
        ({"window_days": "-3"}, "window_days"),
        ({"window_days": "ten"}, "window_days"),
        ({"model": "nope"}, "model"),
    ],
)
def test_the_api_refuses_bad_input_naming_the_parameter(status_model, reader, params, field):
    response = get(reader, **params)
    assert response.status_code == 400
    assert list(error_fields(response)) == [field]


def test_the_api_needs_the_read_scope(status_model, api_client):
    assert get(api_client).status_code in (401, 403)


def test_the_api_runs_a_fixed_number_of_queries(history, reader, django_assert_max_num_queries):
    # Authentication (2), the model (1), stages, channels and the counts (3).
    with django_assert_max_num_queries(6):
        assert get(reader, start="2024-03-01", end="2024-03-31").status_code == 200
