"""RFM (metrics.rfm) on a small history whose breakpoints, scores and segments are worked out by hand.

As of AS_OF (noon), ten buyers b1…b10 and two non-buyers (a lead without orders, and one whose only order was
cancelled). Every order is placed at noon, so "days ago" are whole days.

| buyer | last order | completed orders (amounts)            | total  |  R | F | M | segment (R, FM = (F+M)/2) |
|-------|------------|----------------------------------------|--------|----|---|---|---------------------------|
| b1    | 1 day      | 10.00                                  | 10.00  |  5 | 1 | 1 | new customers (5, 1)      |
| b2    | 2 d + 3 h  | 20.01                                  | 20.01  |  5 | 1 | 1 | new customers (5, 1)      |
| b3    | 3 days     | 30.00                                  | 30.00  |  4 | 1 | 2 | potential loyalists (4, 1.5) |
| b4    | 4 days     | 40.00                                  | 40.00  |  4 | 1 | 3 | potential loyalists (4, 2) |
| b5    | 5 days     | 50.00                                  | 50.00  |  3 | 1 | 3 | about to sleep (3, 2)     |
| b6    | 6 days     | 60.00                                  | 60.00  |  3 | 1 | 4 | need attention (3, 2.5)   |
| b7    | 7 days     | 10.00 (200 d), 10.01                   | 20.01  |  2 | 4 | 1 | at risk (2, 2.5)          |
| b8    | 8 days     | 35.00 (200 d), 35.00                   | 70.00  |  2 | 4 | 4 | at risk (2, 4)            |
| b9    | 9 days     | 26.67 (200 d), 26.67 (100 d), 26.66    | 80.00  |  1 | 5 | 5 | cannot lose them (1, 5)   |
| b10   | 10 days    | 18.00 × 4 (300/250/200/150 d), 18.00   | 90.00  |  1 | 5 | 5 | cannot lose them (1, 5)   |

n = 10 buyers → edges at ranks ⌈k·10/5⌉ = 2, 4, 6, 8:
recency days sorted 1,2,3,…,10 → [2, 4, 6, 8]; orders sorted 1,1,1,1,1,1,2,2,3,5 → [1, 1, 1, 2] (ties: every
one-order buyer scores F = 1, both two-order buyers F = 4); totals sorted 10, 20.01, 20.01, 30, 40, 50, 60, 70, 80,
90 → [20.01, 30, 50, 70] (the tied 20.01s both score M = 1).
"""

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from lifecycle.models import Channel, Customer, CustomerStage, LifecycleModel, OrderStatus, StageRule
from lifecycle.rules import RuleError, classification_queryset, conditions_parse
from lifecycle.services import model_reclassify
from metrics.filters import MetricFilters
from metrics.models import RfmBreakpoints
from metrics.rfm import (
    SEGMENTS,
    quintile_ranks,
    rfm_breakpoints_compute,
    rfm_breakpoints_latest,
    rfm_breakpoints_store,
    rfm_compute,
    rfm_customers,
    rfm_features_register,
    rfm_score_expression,
    segment_of,
)
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-06-30", 12)
START = AS_OF - timedelta(days=30)

BUYERS = {
    # key: [(days before AS_OF, amount), …]
    "b1": [(1, "10.00")],
    "b2": [(timedelta(days=2, hours=3), "20.01")],
    "b3": [(3, "30.00")],
    "b4": [(4, "40.00")],
    "b5": [(5, "50.00")],
    "b6": [(6, "60.00")],
    "b7": [(200, "10.00"), (7, "10.01")],
    "b8": [(200, "35.00"), (8, "35.00")],
    "b9": [(200, "26.67"), (100, "26.67"), (9, "26.66")],
    "b10": [(300, "18.00"), (250, "18.00"), (200, "18.00"), (150, "18.00"), (10, "18.00")],
}
SCORES = {
    "b1": (5, 1, 1),
    "b2": (5, 1, 1),
    "b3": (4, 1, 2),
    "b4": (4, 1, 3),
    "b5": (3, 1, 3),
    "b6": (3, 1, 4),
    "b7": (2, 4, 1),
    "b8": (2, 4, 4),
    "b9": (1, 5, 5),
    "b10": (1, 5, 5),
}
SEGMENT_OF = {
    "b1": "new_customers",
    "b2": "new_customers",
    "b3": "potential_loyalists",
    "b4": "potential_loyalists",
    "b5": "about_to_sleep",
    "b6": "need_attention",
    "b7": "at_risk",
    "b8": "at_risk",
    "b9": "cannot_lose_them",
    "b10": "cannot_lose_them",
}


@pytest.fixture
def history() -> dict[str, Customer]:
    customers = {}
    for key, orders in BUYERS.items():
        customer = CustomerFactory(external_id=key, first_seen_at=at("2023-01-01", 0))
        for ago, amount in orders:
            delta = ago if isinstance(ago, timedelta) else timedelta(days=ago)
            OrderFactory(customer=customer, placed_at=AS_OF - delta, amount=Decimal(amount))
        customers[key] = customer
    # Ignored: a cancelled order (b1 would otherwise be the biggest spender) and an order after AS_OF.
    OrderFactory(
        customer=customers["b1"], placed_at=AS_OF - timedelta(days=1), amount=500, status=OrderStatus.CANCELLED
    )
    OrderFactory(customer=customers["b3"], placed_at=AS_OF + timedelta(hours=1), amount=500)
    customers["lead"] = CustomerFactory(external_id="lead", first_seen_at=at("2024-03-01", 0))
    customers["cancelled"] = CustomerFactory(external_id="cancelled", first_seen_at=at("2024-03-01", 0))
    OrderFactory(customer=customers["cancelled"], placed_at=AS_OF - timedelta(days=2), status=OrderStatus.CANCELLED)
    return customers


def scores_of(breakpoints, as_of=AS_OF) -> dict[str, tuple]:
    expressions = {
        f"score_{d}": rfm_score_expression(dimension=d, as_of=as_of, breakpoints=breakpoints)
        for d in ("recency", "frequency", "monetary")
    }
    rows = Customer.objects.annotate(**expressions).values_list(
        "external_id", "score_recency", "score_frequency", "score_monetary"
    )
    return {external_id: tuple(scores) for external_id, *scores in rows}


def test_quintile_ranks_use_the_nearest_rank_rule():
    assert quintile_ranks(10) == [2, 4, 6, 8]
    assert quintile_ranks(4) == [1, 2, 3, 4]
    assert quintile_ranks(1) == [1, 1, 1, 1]
    assert quintile_ranks(7) == [2, 3, 5, 6]


def test_breakpoints_are_the_quintile_edges_among_buyers_with_ties(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        breakpoints = rfm_breakpoints_compute(as_of=AS_OF)
    assert breakpoints.buyers == 10
    assert breakpoints.recency_days == [2, 4, 6, 8]
    assert breakpoints.frequency == [1, 1, 1, 2]
    assert breakpoints.monetary == [20.01, 30.0, 50.0, 70.0]


def test_breakpoints_without_buyers_are_empty_and_score_nobody():
    CustomerFactory()
    breakpoints = rfm_breakpoints_compute(as_of=AS_OF)
    assert (breakpoints.buyers, breakpoints.recency_days, breakpoints.frequency, breakpoints.monetary) == (
        0,
        [],
        [],
        [],
    )
    assert set(scores_of(breakpoints).values()) == {(None, None, None)}


def test_scores_follow_the_edges_and_ties_get_the_same_score(history, django_assert_max_num_queries):
    breakpoints = rfm_breakpoints_compute(as_of=AS_OF)
    with django_assert_max_num_queries(1):
        scores = scores_of(breakpoints)
    assert {key: scores[key] for key in SCORES} == SCORES


def test_non_buyers_have_null_scores(history):
    scores = scores_of(rfm_breakpoints_compute(as_of=AS_OF))
    assert scores["lead"] == (None, None, None)
    assert scores["cancelled"] == (None, None, None)


def test_recency_counts_whole_days_back_from_the_moment_scored():
    """Edges [2, 4, 6, 8] days: a last order 2 days 23 hours ago is 2 whole days (R 5), exactly 3 days is R 4."""
    edges = RfmBreakpoints(recency_days=[2, 4, 6, 8], frequency=[1, 1, 1, 1], monetary=[1, 1, 1, 1])
    almost = OrderFactory(placed_at=AS_OF - timedelta(days=2, hours=23)).customer
    three = OrderFactory(placed_at=AS_OF - timedelta(days=3)).customer
    old = OrderFactory(placed_at=AS_OF - timedelta(days=9)).customer
    scores = scores_of(edges)
    assert [scores[c.external_id][0] for c in (almost, three, old)] == [5, 4, 1]


def test_zero_spend_buyer_scores_monetary_1_not_null():
    buyer = OrderFactory(placed_at=AS_OF - timedelta(days=1), amount=0).customer
    edges = RfmBreakpoints(recency_days=[1, 2, 3, 4], frequency=[1, 1, 1, 1], monetary=[0, 5, 10, 20])
    assert scores_of(edges)[buyer.external_id] == (5, 1, 1)


def test_unknown_dimension_is_refused():
    with pytest.raises(ValueError, match="Unknown RFM dimension"):
        rfm_score_expression(dimension="loyalty", as_of=AS_OF, breakpoints=None)


def test_segment_map_tiles_the_r_by_fm_grid_as_published():
    """Putler's R × FM chart, FM = (F + M) / 2, row by row (FM from 1 to 5 in steps of ½), worked out by hand."""
    expected = {
        5: ["new_customers"] + ["potential_loyalists"] * 4 + ["loyal_customers"] * 2 + ["champions"] * 2,
        4: ["promising"] + ["potential_loyalists"] * 4 + ["loyal_customers"] * 4,
        3: ["about_to_sleep"] * 3 + ["need_attention"] * 2 + ["loyal_customers"] * 4,
        2: ["lost"] + ["hibernating"] * 2 + ["at_risk"] * 6,
        1: ["lost"] * 3 + ["at_risk"] * 4 + ["cannot_lose_them"] * 2,
    }
    for r, row in expected.items():
        # F + M = 2 … 10 (FM 1 … 5); F is 1 while it can be, the rest goes to M
        assert [segment_of(r=r, f=max(1, fm2 - 5), m=min(5, fm2 - 1)) for fm2 in range(2, 11)] == row, r
    assert set(SEGMENTS) == {s for row in expected.values() for s in row}


def test_segment_counts_and_score_distribution(history, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        result = rfm_compute(filters=MetricFilters(as_of=AS_OF))
    assert (result["customers"], result["buyers"]) == (12, 10)
    assert result["breakpoints"]["buyers"] == 10
    counts = {segment["key"]: segment["customers"] for segment in result["segments"]}
    assert counts == {
        "champions": 0,
        "loyal_customers": 0,
        "potential_loyalists": 2,
        "new_customers": 2,
        "promising": 0,
        "need_attention": 1,
        "about_to_sleep": 1,
        "cannot_lose_them": 2,
        "at_risk": 2,
        "hibernating": 0,
        "lost": 0,
    }
    assert [s["share"] for s in result["segments"] if s["key"] == "at_risk"] == [0.2]
    by_score = {d: [row["customers"] for row in rows] for d, rows in result["scores"].items()}
    assert by_score == {"recency": [2, 2, 2, 2, 2], "frequency": [6, 0, 0, 2, 2], "monetary": [3, 1, 2, 2, 2]}
    assert {(c["r"], c["f"], c["m"]): c["customers"] for c in result["cells"]} == {
        (5, 1, 1): 2,
        (4, 1, 2): 1,
        (4, 1, 3): 1,
        (3, 1, 3): 1,
        (3, 1, 4): 1,
        (2, 4, 1): 1,
        (2, 4, 4): 1,
        (1, 5, 5): 2,
    }
    assert result["movement"] is None


def test_filters_choose_whom_to_count_but_not_the_breakpoints(history):
    email = Channel.objects.get(key="email")
    Customer.objects.filter(external_id__in=["b1", "b9", "lead"]).update(acquisition_channel=email)
    result = rfm_compute(filters=MetricFilters(as_of=AS_OF, channel="email"))
    assert (result["customers"], result["buyers"], result["breakpoints"]["buyers"]) == (3, 2, 10)
    counts = {segment["key"]: segment["customers"] for segment in result["segments"] if segment["customers"]}
    assert counts == {"new_customers": 1, "cannot_lose_them": 1}


def test_empty_selection_gives_zero_counts_and_null_shares(django_assert_max_num_queries):
    with django_assert_max_num_queries(11):
        result = rfm_compute(filters=MetricFilters(as_of=AS_OF), start=START)
    assert (result["customers"], result["buyers"]) == (0, 0)
    assert {s["customers"] for s in result["segments"]} == {0}
    assert {s["share"] for s in result["segments"]} == {None}
    assert result["cells"] == []
    assert result["movement"]["cells"] == []


def test_movement_between_segments_from_start(history, django_assert_max_num_queries):
    """As of START (30 days earlier) only b7…b10 were buyers, with their older orders:

    | buyer | days since last | orders | total | R | F | M | segment then        |
    |-------|-----------------|--------|-------|---|---|---|---------------------|
    | b7    | 170             | 1      | 10.00 | 3 | 1 | 1 | about to sleep      |
    | b8    | 170             | 1      | 35.00 | 3 | 1 | 2 | about to sleep      |
    | b9    | 70              | 2      | 53.34 | 5 | 3 | 3 | potential loyalists |
    | b10   | 120             | 4      | 72.00 | 4 | 4 | 4 | loyal customers     |

    n = 4 → ranks 1, 2, 3, 4: recency edges [70, 120, 170, 170], frequency [1, 1, 2, 4], monetary [10, 35, 53.34, 72].
    """
    with django_assert_max_num_queries(11):
        result = rfm_compute(filters=MetricFilters(as_of=AS_OF), start=START)
    movement = result["movement"]
    assert movement["breakpoints"]["recency_days"] == [70, 120, 170, 170]
    assert movement["breakpoints"]["frequency"] == [1, 1, 2, 4]
    assert movement["breakpoints"]["monetary"] == [10.0, 35.0, 53.34, 72.0]
    cells = {(c["from"], c["to"]): c["customers"] for c in movement["cells"]}
    assert cells == {
        ("potential_loyalists", "cannot_lose_them"): 1,
        ("loyal_customers", "cannot_lose_them"): 1,
        ("about_to_sleep", "at_risk"): 2,
        ("(none)", "potential_loyalists"): 2,
        ("(none)", "new_customers"): 2,
        ("(none)", "need_attention"): 1,
        ("(none)", "about_to_sleep"): 1,
    }
    assert (movement["stayed"], movement["moved"], movement["new_buyers"]) == (0, 4, 6)
    assert json.loads(json.dumps(result)) == result  # plain JSON: stored as a snapshot as is


def test_movement_needs_start_before_as_of(history):
    with pytest.raises(ValueError, match="must be before"):
        rfm_compute(filters=MetricFilters(as_of=AS_OF), start=AS_OF)


def test_drill_down_lists_exactly_the_segment_counts(history, django_assert_max_num_queries):
    filters = MetricFilters(as_of=AS_OF)
    counts = {s["key"]: s["customers"] for s in rfm_compute(filters=filters)["segments"]}
    for segment, count in counts.items():
        with django_assert_max_num_queries(5):
            customers = sorted(rfm_customers(filters=filters, segment=segment).values_list("external_id", flat=True))
        assert len(customers) == count
        assert customers == sorted(key for key, s in SEGMENT_OF.items() if s == segment)


def test_drill_down_refuses_an_unknown_segment():
    with pytest.raises(ValueError, match="Unknown segment"):
        rfm_customers(filters=MetricFilters(as_of=AS_OF), segment="vip")


def test_stored_breakpoints_and_latest(history):
    assert rfm_breakpoints_latest() is None
    older = rfm_breakpoints_store(as_of=START)
    newer = rfm_breakpoints_store(as_of=AS_OF)
    assert rfm_breakpoints_latest() == newer != older
    newer.refresh_from_db()
    assert (newer.buyers, newer.recency_days, newer.frequency, newer.monetary) == (
        10,
        [2, 4, 6, 8],
        [1, 1, 1, 2],
        [20.01, 30.0, 50.0, 70.0],
    )
    assert scores_of(newer) == scores_of(rfm_breakpoints_compute(as_of=AS_OF))


def test_rule_r_score_at_least_4_compiles_and_classifies(history):
    """With `active` := r_score >= 4: b1…b4 are active; the other one-order buyers (b5, b6) stay `new`; b7…b10 and
    the non-buyers match nothing and fall back to `prospect`."""
    rfm_features_register()
    conditions_parse([{"feature": "r_score", "operator": ">=", "value": 4}])
    rfm_breakpoints_store(as_of=AS_OF)
    model = LifecycleModel.objects.get(key="status")
    active = model.stages.get(key="active")
    StageRule.objects.filter(stage=active).delete()
    StageRule.objects.create(stage=active, conditions=[{"feature": "r_score", "operator": ">=", "value": 4}])

    # The preview path: the compiled query…
    keys = dict(model.stages.values_list("pk", "key"))
    targets = {
        external_id: keys[stage_id]
        for external_id, stage_id in classification_queryset(model, AS_OF).values_list("external_id", "target_stage_id")
    }
    # …and the real run (the compiled SQL inside the reclassification INSERT).
    model_reclassify(model=model, as_of=AS_OF)
    stages = dict(CustomerStage.objects.filter(model=model).values_list("customer__external_id", "stage__key"))
    expected = {
        **dict.fromkeys(["b1", "b2", "b3", "b4"], "active"),
        **dict.fromkeys(["b5", "b6"], "new"),
        **dict.fromkeys(["b7", "b8", "b9", "b10", "lead", "cancelled"], "prospect"),
    }
    assert stages == expected
    assert targets == expected


def test_rule_on_r_score_without_stored_breakpoints_matches_nobody(history):
    rfm_features_register()
    model = LifecycleModel.objects.get(key="status")
    active = model.stages.get(key="active")
    rules = {active.pk: [[{"feature": "r_score", "operator": ">=", "value": 1}]]}
    targets = set(classification_queryset(model, AS_OF, rules).values_list("target_stage_id", flat=True))
    assert active.pk not in targets


def test_rule_values_for_scores_must_be_whole_numbers():
    rfm_features_register()
    with pytest.raises(RuleError):
        conditions_parse([{"feature": "m_score", "operator": ">=", "value": 4.5}])
