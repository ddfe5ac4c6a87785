"""Flows (metrics.flows): the from × to matrix of transitions in a period, and the customers behind a cell."""

from datetime import UTC, date, datetime, time

import pytest

from lifecycle.models import Channel, Customer, LifecycleModel
from metrics.filters import MetricFilters
from metrics.flows import flow_customers, flows_compute
from tests.factories import CustomerFactory, at, transitions_record

pytestmark = pytest.mark.django_db

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime.combine(date(2024, 6, 30), time.max, UTC)
AS_OF = datetime.combine(date(2024, 12, 31), time.max, UTC)


@pytest.fixture
def history(status_model: LifecycleModel) -> None:
    # ann goes back and forth between active and inactive: the same move twice in the period
    transitions_record(
        status_model,
        CustomerFactory(external_id="ann"),
        [
            ("new", at("2023-12-20")),
            ("active", at("2024-02-01")),
            ("inactive", at("2024-03-01")),
            ("active", at("2024-04-01")),
            ("inactive", at("2024-05-01")),
            ("former", at("2024-07-15")),
        ],
    )
    transitions_record(
        status_model, CustomerFactory(external_id="ben"), [("prospect", at("2024-01-10")), ("new", at("2024-03-15"))]
    )
    # cat's first classification is in the last hour of the period, her next move after it
    transitions_record(
        status_model,
        CustomerFactory(external_id="cat"),
        [("prospect", at("2024-06-30", 23)), ("new", at("2024-07-01"))],
    )
    transitions_record(status_model, CustomerFactory(external_id="dan"), [("prospect", START)])  # exactly at the start


def matrix(result: dict) -> list[tuple]:
    return [(cell["from"], cell["to"], cell["count"], cell["customers"]) for cell in result["cells"]]


def cell_customers(model: LifecycleModel, filters: MetricFilters, from_key: str | None, to_key: str) -> set[str]:
    customers = flow_customers(model=model, start=START, end=END, filters=filters, from_key=from_key, to_key=to_key)
    return set(customers.values_list("external_id", flat=True))


def test_cells_count_transitions_from_and_to_each_stage_in_the_period(history, status_model):
    result = flows_compute(model=status_model, start=START, end=END, filters=MetricFilters(as_of=AS_OF))

    assert matrix(result) == [
        (None, "prospect", 3, 3),  # ben, cat, dan: first classifications
        ("prospect", "new", 1, 1),
        ("new", "active", 1, 1),
        ("active", "inactive", 2, 1),  # ann, twice
        ("inactive", "active", 1, 1),
    ]
    assert result["cells"][0]["from_name"] == "(new)" and result["cells"][0]["to_name"] == "Prospect"
    assert result["totals"] == {
        "transitions": 8,
        "customers": 4,
        "new": 3,
        "out": {"prospect": 1, "new": 1, "active": 2, "inactive": 1, "former": 0},
        "in": {"prospect": 3, "new": 1, "active": 2, "inactive": 2, "former": 0},
    }
    assert [stage["key"] for stage in result["stages"]] == ["prospect", "new", "active", "inactive", "former"]
    assert (result["start"], result["end"]) == ("2024-01-01T00:00:00+00:00", "2024-06-30T23:59:59.999999+00:00")


def test_a_cell_drills_down_to_its_distinct_customers(history, status_model):
    filters = MetricFilters(as_of=AS_OF)
    assert cell_customers(status_model, filters, None, "prospect") == {"ben", "cat", "dan"}
    assert cell_customers(status_model, filters, "active", "inactive") == {"ann"}  # one customer, two transitions
    assert cell_customers(status_model, filters, "new", "former") == set()
    assert cell_customers(status_model, filters, None, "new") == set()  # ann's first classification was before

    result = flows_compute(model=status_model, start=START, end=END, filters=filters)
    for cell in result["cells"]:
        assert len(cell_customers(status_model, filters, cell["from"], cell["to"])) == cell["customers"]


def test_as_of_caps_the_period(history, status_model):
    result = flows_compute(model=status_model, start=START, end=END, filters=MetricFilters(as_of=at("2024-03-31")))

    assert matrix(result) == [
        (None, "prospect", 2, 2),  # cat comes in June
        ("prospect", "new", 1, 1),
        ("new", "active", 1, 1),
        ("active", "inactive", 1, 1),
    ]
    assert cell_customers(status_model, MetricFilters(as_of=at("2024-03-31")), None, "prospect") == {"ben", "dan"}


def test_the_channel_filter_narrows_the_matrix_and_its_drill_downs(history, status_model):
    Customer.objects.filter(external_id="dan").update(acquisition_channel=Channel.objects.get(key="email"))
    filters = MetricFilters(as_of=AS_OF, channel="email")

    result = flows_compute(model=status_model, start=START, end=END, filters=filters)

    assert matrix(result) == [(None, "prospect", 1, 1)]
    assert result["totals"]["transitions"] == 1 and result["totals"]["customers"] == 1
    assert cell_customers(status_model, filters, None, "prospect") == {"dan"}


def test_a_quiet_period_gives_an_empty_matrix(history, status_model):
    result = flows_compute(
        model=status_model, start=at("2030-01-01"), end=at("2030-02-01"), filters=MetricFilters(as_of=at("2030-03-01"))
    )
    assert result["cells"] == [] and result["totals"]["transitions"] == result["totals"]["customers"] == 0


def test_an_unknown_stage_key_is_rejected(history, status_model):
    with pytest.raises(ValueError, match="Unknown stage 'lost'"):
        flow_customers(
            model=status_model, start=START, end=END, filters=MetricFilters(as_of=AS_OF), from_key="lost", to_key="new"
        )


def test_flows_take_a_fixed_number_of_queries(history, status_model, django_assert_max_num_queries):
    for n in range(20):
        transitions_record(
            status_model, CustomerFactory(), [("prospect", at("2024-02-01")), ("new", at(f"2024-03-{n + 1:02}"))]
        )
    filters = MetricFilters(as_of=AS_OF, channel="email")
    with django_assert_max_num_queries(3):
        flows_compute(model=status_model, start=START, end=END, filters=filters)
    with django_assert_max_num_queries(2):
        list(flow_customers(model=status_model, start=START, end=END, filters=filters, from_key=None, to_key="new"))
