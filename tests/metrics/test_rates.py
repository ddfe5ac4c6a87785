"""The named rates (metrics.rates) on a small history whose answers are worked out by hand.

Period: June 2024, [START, END] = [06-01 00:00, 06-30 23:59:59.999999]; the previous period of equal length is
[05-02 00:00, 06-01 00:00). Computed as of the end of July, so events in July exist but must not count.

| who | first seen | completed orders (cancelled)          | status model path                                       |
|-----|------------|---------------------------------------|---------------------------------------------------------|
| l1  | 06-05      | 06-10                                 | prospect 06-05, new 06-10                               |
| l2  | 06-10      | (06-12 cancelled)                     | –                                                       |
| l3  | 06-20      | 07-02 (after the end)                 | –                                                       |
| l4  | 06-25      | –                                     | –                                                       |
| l5  | 07-02      | – (first seen after the end: not in)  | –                                                       |
| a   | 01-01      | 05-10, 06-15                          | prospect 01-01, new 05-10, active 06-15                 |
| b   | 01-01      | 05-20 (06-18 cancelled)               | prospect 01-01, new 05-20, inactive 06-20               |
| c   | 01-01      | 03-01, 06-05, 07-05 (after the end)   | new 03-01, inactive 05-15, active 06-05, inactive 06-25 |
| d   | 01-01      | –                                     | prospect 01-01                                          |
| e   | 01-01      | 05-02 00:00 (previous period's start) | new 05-02, former 06-01 00:00 (the period's start)      |
| f   | 01-01      | 05-01 23:59, 06-01 00:00              | inactive 04-01                                          |
| g   | 01-01      | –                                     | new 01-01, inactive 07-03 (after the end)               |

Referrals: a referred l1 (first seen 06-05), d referred l2 (06-10), b referred l5 (first seen 07-02: too late).
"""

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest

from lifecycle.models import (
    Channel,
    Customer,
    LifecycleModel,
    OrderStatus,
)
from metrics.filters import MetricFilters
from metrics.rates import DEFINITIONS, rates_compute
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, at, transitions_record

pytestmark = pytest.mark.django_db

START = datetime.combine(date(2024, 6, 1), time.min, UTC)
END = datetime.combine(date(2024, 6, 30), time.max, UTC)
AS_OF = datetime.combine(date(2024, 7, 31), time.max, UTC)


def moment(text: str) -> datetime:
    """ "MM-DD" (noon) or "MM-DDTHH:MM" in 2024."""
    if "T" in text:
        return datetime.fromisoformat(f"2024-{text}").replace(tzinfo=UTC)
    return at(f"2024-{text}")


def record(model: LifecycleModel, customer: Customer, path: list[tuple[str, str]]) -> None:
    transitions_record(model, customer, [(key, moment(when)) for key, when in path])


@pytest.fixture
def history(status_model: LifecycleModel) -> dict[str, Customer]:
    first_seen = {"l1": "06-05", "l2": "06-10", "l3": "06-20", "l4": "06-25", "l5": "07-02"}
    c = {key: CustomerFactory(external_id=key, first_seen_at=moment(f"{day}T00:00")) for key, day in first_seen.items()}
    for key in "abcdefg":
        c[key] = CustomerFactory(external_id=key, first_seen_at=moment("01-01T00:00"))
    c["l1"].referred_by = c["a"]
    c["l2"].referred_by = c["d"]
    c["l5"].referred_by = c["b"]
    for key in ("l1", "l2", "l5"):
        c[key].save()

    completed = {
        "l1": ["06-10"],
        "l3": ["07-02"],
        "a": ["05-10", "06-15"],
        "b": ["05-20"],
        "c": ["03-01", "06-05", "07-05"],
        "e": ["05-02T00:00"],
        "f": ["05-01T23:59", "06-01T00:00"],
    }
    for key, days in completed.items():
        for day in days:
            OrderFactory(customer=c[key], placed_at=moment(day))
    OrderFactory(customer=c["l2"], placed_at=moment("06-12"), status=OrderStatus.CANCELLED)
    OrderFactory(customer=c["b"], placed_at=moment("06-18"), status=OrderStatus.CANCELLED)

    paths = {
        "l1": [("prospect", "06-05"), ("new", "06-10")],
        "a": [("prospect", "01-01"), ("new", "05-10"), ("active", "06-15")],
        "b": [("prospect", "01-01"), ("new", "05-20"), ("inactive", "06-20")],
        "c": [("new", "03-01"), ("inactive", "05-15"), ("active", "06-05"), ("inactive", "06-25")],
        "d": [("prospect", "01-01")],
        "e": [("new", "05-02T00:00"), ("former", "06-01T00:00")],
        "f": [("inactive", "04-01")],
        "g": [("new", "01-01"), ("inactive", "07-03")],
    }
    for key, path in paths.items():
        record(status_model, c[key], path)
    return c


@pytest.fixture
def feedback(history: dict[str, Customer]) -> None:
    """Latest answers by the end: a 10 (the 3 before is older), b 9 (the 6 is after the end), c 5, d 9 (two answers
    at the same moment: the later row wins), l4 0; l5 (first seen after the end) answers 10 in July."""
    answers = [
        ("a", 3, "05-01"),
        ("a", 10, "06-20"),
        ("b", 9, "06-10"),
        ("b", 6, "07-01"),
        ("c", 5, "06-01"),
        ("d", 2, "06-02"),
        ("d", 9, "06-02"),
        ("l4", 0, "06-26"),
        ("l5", 10, "07-03"),
    ]
    for key, score, day in answers:
        FeedbackFactory(customer=history[key], score=score, submitted_at=moment(day))


def compute(model, filters=None, start=START, end=END) -> dict:
    return rates_compute(model=model, start=start, end=end, filters=filters or MetricFilters(as_of=AS_OF))


def numbers(rate: dict) -> tuple:
    return rate["value"], rate["numerator"], rate["denominator"]


def test_conversion_counts_leads_first_seen_in_the_period_with_a_completed_order_by_its_end(status_model, history):
    """Leads l1…l4: l1 ordered; l2's order was cancelled; l3 ordered only after the end; l4 never. l5 came later."""
    assert numbers(compute(status_model)["rates"]["conversion_rate"]) == (0.25, 1, 4)


def test_repeat_purchase_rate_counts_completed_orders_by_the_end(status_model, history):
    """Buyers by the end: l1, a, b, c, e, f; with 2 or more: a, c (03-01 and 06-05; its July order is too late), f."""
    assert numbers(compute(status_model)["rates"]["repeat_purchase_rate"]) == (0.5, 3, 6)


def test_retention_rate_against_the_previous_period_of_equal_length(status_model, history):
    """Ordered in [05-02, 06-01): a, b, e (its order at the first instant counts); f's 05-01 23:59 is before it.
    Of those, only a also ordered in June (b's June order was cancelled)."""
    rate = compute(status_model)["rates"]["retention_rate"]
    assert numbers(rate) == (pytest.approx(1 / 3), 1, 3)
    assert rate["previous_start"] == "2024-05-02T00:00:00+00:00"


def test_churn_rate_from_funnel_stages_at_the_start_to_exit_stages(status_model, history):
    """In a funnel stage just before June: a, b, e (new), d (prospect), g (new). b and e left for an exit stage in
    June (e at its first instant); g only in July. c's move to inactive counts as a transition but c started June in
    an exit stage."""
    rate = compute(status_model)["rates"]["churn_rate"]
    assert numbers(rate) == (0.4, 2, 5)
    assert rate["transitions"] == 3


def test_reactivation_rate_from_exit_stages_at_the_start_to_funnel_stages(status_model, history):
    """In an exit stage just before June: c and f (inactive); c came back to active."""
    rate = compute(status_model)["rates"]["reactivation_rate"]
    assert numbers(rate) == (0.5, 1, 2)
    assert rate["transitions"] == 1


def test_referral_rate_counts_referred_customers_first_seen_by_the_end(status_model, history):
    """Customers first seen by the end: l1…l4 and a…g (11). a and d referred someone by then; b's referral (l5)
    came in July."""
    assert numbers(compute(status_model)["rates"]["referral_rate"]) == (pytest.approx(2 / 11), 2, 11)


def test_nps_overall_and_per_stage_from_each_latest_answer(status_model, feedback):
    """Latest answers: a 10, b 9, d 9 (promoters), c 5, l4 0 (detractors): NPS = 100 × (3 − 2) / 5 = 20.
    Stages at the end: a active, b inactive, c inactive, d prospect, l4 none."""
    result = compute(status_model)
    nps = result["rates"]["nps"]
    assert (nps["value"], nps["responses"], nps["promoters"], nps["passives"], nps["detractors"]) == (20, 5, 3, 0, 2)
    assert (nps["numerator"], nps["denominator"]) == (1, 5)
    by_stage = {row["stage"]: (row["responses"], row["nps"]) for row in result["nps_by_stage"]}
    assert by_stage == {
        "prospect": (1, 100),
        "new": (0, None),
        "active": (1, 100),
        "inactive": (2, 0),
        "former": (0, None),
        None: (1, -100),
    }
    assert [row["stage"] for row in result["nps_by_stage"]][:5] == ["prospect", "new", "active", "inactive", "former"]


def test_every_rate_has_a_value_numerator_denominator_and_definition(
    status_model, feedback, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        result = compute(status_model)
    assert list(result["rates"]) == list(DEFINITIONS)
    assert json.loads(json.dumps(result)) == result  # plain JSON: stored as a snapshot as is
    for name, rate in result["rates"].items():
        assert {"value", "numerator", "denominator", "definition"} <= set(rate), name
        assert rate["definition"] == DEFINITIONS[name]
    assert (result["model"], result["start"], result["end"]) == (
        "status",
        "2024-06-01T00:00:00+00:00",
        "2024-06-30T23:59:59.999999+00:00",
    )


def test_events_after_the_end_are_ignored(status_model, feedback, history):
    before = compute(status_model)
    later = moment("07-10")
    newcomer = CustomerFactory(external_id="late", first_seen_at=later, referred_by=history["d"])
    for key in ("a", "b", "d", "l2", "l4"):
        OrderFactory(customer=history[key], placed_at=later)
        FeedbackFactory(customer=history[key], score=0, submitted_at=later)
    OrderFactory(customer=newcomer, placed_at=later)
    record(status_model, history["a"], [("inactive", "07-10")])
    assert compute(status_model) == before


def test_the_end_is_capped_at_as_of(status_model, history):
    """As of June 15 (end of day), c's and f's June orders count but the later ones do not."""
    filters = MetricFilters(as_of=datetime.combine(date(2024, 6, 15), time.max, UTC))
    capped = compute(status_model, filters=filters, end=AS_OF)
    assert capped["end"] == "2024-06-15T23:59:59.999999+00:00"
    # Leads by June 15: l1 (ordered 06-10), l2; b's churn on 06-20 is after the capped end.
    assert numbers(capped["rates"]["conversion_rate"]) == (0.5, 1, 2)
    assert numbers(capped["rates"]["churn_rate"]) == (0.2, 1, 5)


def test_filters_narrow_every_rate_to_the_selected_customers(status_model, feedback, history):
    email = Channel.objects.get(key="email")
    Customer.objects.filter(external_id__in=["a", "b"]).update(acquisition_channel=email)
    rates = compute(status_model, filters=MetricFilters(as_of=AS_OF, channel="email"))["rates"]
    assert numbers(rates["conversion_rate"]) == (None, 0, 0)
    assert numbers(rates["repeat_purchase_rate"]) == (0.5, 1, 2)
    assert numbers(rates["retention_rate"]) == (0.5, 1, 2)
    assert numbers(rates["churn_rate"]) == (0.5, 1, 2)
    assert numbers(rates["reactivation_rate"]) == (None, 0, 0)
    assert numbers(rates["referral_rate"]) == (0.5, 1, 2)
    assert (rates["nps"]["value"], rates["nps"]["responses"]) == (100, 2)


def test_empty_selection_gives_null_rates_without_error(status_model, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        result = compute(status_model)
    for name, rate in result["rates"].items():
        assert (rate["value"], rate["denominator"]) == (None, 0), name
    assert {row["responses"] for row in result["nps_by_stage"]} == {0}
    assert {row["nps"] for row in result["nps_by_stage"]} == {None}


def test_without_a_model_churn_and_reactivation_are_null_and_nps_is_overall_only(feedback):
    result = compute(None)
    assert result["model"] is None
    assert numbers(result["rates"]["churn_rate"]) == (None, 0, 0)
    assert numbers(result["rates"]["reactivation_rate"]) == (None, 0, 0)
    assert result["rates"]["nps"]["value"] == 20
    assert [(row["stage"], row["responses"]) for row in result["nps_by_stage"]] == [(None, 5)]


def test_start_after_end_is_refused(status_model):
    with pytest.raises(ValueError, match="must not be after"):
        compute(status_model, start=END + timedelta(days=1))
