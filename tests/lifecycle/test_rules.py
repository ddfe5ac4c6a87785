from datetime import timedelta

import pytest

from lifecycle.conditions import conditions_describe
from lifecycle.models import LifecycleModel
from lifecycle.rules import RuleError, classification_queryset, conditions_parse
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db


def cond(feature, operator, value):
    return {"feature": feature, "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("condition", "path", "words"),
    [
        (cond("shoe_size", ">", 3), "conditions[0].feature", "unknown feature 'shoe_size'"),
        (cond("order_count", "~=", 3), "conditions[0].operator", "unknown operator"),
        (cond("order_count", ">", "three"), "conditions[0].value", "whole number"),
        (cond("order_count", ">", 2.5), "conditions[0].value", "whole number"),
        (cond("order_count", ">", True), "conditions[0].value", "not true/false"),
        (cond("total_spent", ">=", "lots"), "conditions[0].value", "must be a number"),
        (cond("total_spent", ">=", "NaN"), "conditions[0].value", "must be a number"),
        (cond("order_count", "between", [5, 2]), "conditions[0].value", "low ≤ high"),
        (cond("order_count", "between", [1]), "conditions[0].value", "two numbers"),
        (cond("order_count", "in", []), "conditions[0].value", "list of 1 to"),
        (cond("days_since_last_order", ">", -1), "conditions[0].value", "cannot be negative"),
        ("order_count > 1", "condition", "must be an object"),
    ],
)
def test_bad_conditions_are_refused_with_a_clear_error(condition, path, words):
    with pytest.raises(RuleError) as excinfo:
        conditions_parse([condition])
    paths_and_messages = excinfo.value.errors
    assert any(p.startswith(path) and words in m for p, m in paths_and_messages), paths_and_messages


def test_every_bad_condition_of_a_rule_is_reported():
    with pytest.raises(RuleError) as excinfo:
        conditions_parse([cond("nope", ">", 1), cond("order_count", ">=", 1), cond("total_spent", "<", "x")])
    assert [p for p, _ in excinfo.value.errors] == ["conditions[0].feature", "conditions[2].value"]


def test_an_empty_rule_is_refused():
    with pytest.raises(RuleError, match="at least one condition"):
        conditions_parse([])


def test_rules_read_as_words():
    assert conditions_describe([cond("order_count", ">=", 1), cond("days_since_last_order", "between", [30, 60])]) == (
        "order_count >= 1 and days_since_last_order between 30..60"
    )


def test_user_text_is_never_evaluated_as_sql():
    customer = CustomerFactory()
    model = LifecycleModel.objects.get(key="status")
    active = model.stages.get(key="active")
    hostile = {active.pk: [[cond("order_count", ">=", "1; DROP TABLE lifecycle_customer")]]}
    with pytest.raises(RuleError):
        list(classification_queryset(model, at("2024-06-30"), hostile))
    assert customer.__class__.objects.filter(pk=customer.pk).exists()


@pytest.mark.parametrize(
    ("operator", "value", "matching_days"),
    [
        (">", 10, [11, 12]),
        (">=", 10, [10, 11, 12]),
        ("<", 10, [8, 9]),
        ("<=", 10, [8, 9, 10]),
        ("=", 10, [10]),
        ("!=", 10, [8, 9, 11, 12]),
        ("between", [9, 11], [9, 10, 11]),
        ("in", [8, 12], [8, 12]),
    ],
)
def test_day_count_operators_use_whole_days(operator, value, matching_days):
    """Customers whose last order is 8..12 whole days (and an hour) before as_of; the matching ones land in
    `active`, the others stay in the fallback."""
    model = LifecycleModel.objects.get(key="status")
    stages = {s.key: s for s in model.stages.all()}
    as_of = at("2024-06-30", 18)
    by_days = {}
    for days in range(8, 13):
        by_days[days] = OrderFactory(placed_at=as_of - timedelta(days=days, hours=1)).customer
    rules = {stages["active"].pk: [[cond("days_since_last_order", operator, value)]]}
    targets = dict(classification_queryset(model, as_of, rules).values_list("pk", "target_stage_id"))
    matched = sorted(days for days, customer in by_days.items() if targets[customer.pk] == stages["active"].pk)
    assert matched == matching_days


def test_a_null_feature_matches_no_condition_even_not_equal():
    model = LifecycleModel.objects.get(key="status")
    stages = {s.key: s for s in model.stages.all()}
    lead = CustomerFactory()
    rules = {stages["active"].pk: [[cond("last_feedback_score", "!=", 5)]]}
    target = classification_queryset(model, at("2024-06-30"), rules).get(pk=lead.pk).target_stage_id
    assert target == stages["prospect"].pk
