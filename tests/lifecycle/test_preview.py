from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lifecycle.models import (
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    Stage,
    StageRule,
    StageTransition,
)
from lifecycle.preview import rules_by_stage_replace, rules_by_stage_stored, rules_preview
from lifecycle.rules import RuleError
from lifecycle.services import model_reclassify
from lifecycle.templates import template_install

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def customer_with_orders(external_id: str, orders: int) -> Customer:
    customer = Customer.objects.create(external_id=external_id, first_seen_at=NOW - timedelta(days=100))
    for number in range(orders):
        Order.objects.create(
            external_id=f"{external_id}-o{number}",
            customer=customer,
            placed_at=NOW - timedelta(days=10 + number),
            amount=Decimal("20.00"),
        )
    return customer


@pytest.fixture
def status_model() -> LifecycleModel:
    """The `status` template, with three customers of 0, 1 and 2 orders classified by its rules."""
    model, _ = template_install(key="status")
    for external_id, orders in [("zero", 0), ("one", 1), ("two", 2)]:
        customer_with_orders(external_id, orders)
    model_reclassify(model=model)
    return model


def stage(model: LifecycleModel, key: str) -> Stage:
    return Stage.objects.get(model=model, key=key)


def active_threshold(model: LifecycleModel, orders: int) -> dict[int, list[list[dict]]]:
    active = stage(model, "active")
    return rules_by_stage_replace(
        model=model, stage_id=active.pk, rules=[[{"feature": "order_count", "operator": ">=", "value": orders}]]
    )


def test_raising_the_active_threshold_moves_the_two_order_customer_from_active_to_prospect(status_model):
    preview = rules_preview(model=status_model, rules_by_stage=active_threshold(status_model, 3))

    # Two orders no longer make an active customer, and `new` means exactly one order: the fallback is left.
    assert preview.moves == [("active", "prospect", 1)]
    assert preview.moving == 1
    assert preview.total == 3
    assert preview.matrix["active"]["prospect"] == 1
    assert preview.matrix["new"]["new"] == 1
    assert preview.matrix["prospect"]["prospect"] == 1
    assert {key: preview.before[key] for key in ("prospect", "new", "active")} == {"prospect": 1, "new": 1, "active": 1}
    assert {key: preview.after[key] for key in ("prospect", "new", "active")} == {"prospect": 2, "new": 1, "active": 0}
    totals = {row["key"]: row for row in preview.totals}
    assert totals["active"]["change"] == -1 and totals["prospect"]["change"] == 1


def test_the_stored_rules_move_nobody(status_model):
    preview = rules_preview(model=status_model, rules_by_stage=rules_by_stage_stored(model=status_model))
    assert preview.moving == 0 and preview.moves == []
    assert preview.total == 3


def test_lowering_the_threshold_moves_the_one_order_customer_from_new_to_active(status_model):
    preview = rules_preview(model=status_model, rules_by_stage=active_threshold(status_model, 1))
    assert preview.moves == [("new", "active", 1)]


def test_customers_not_classified_yet_count_as_moving_from_none(status_model):
    customer_with_orders("late", 2)
    preview = rules_preview(model=status_model, rules_by_stage=rules_by_stage_stored(model=status_model))
    assert preview.moves == [(None, "active", 1)]
    assert preview.before[None] == 1
    assert [row["key"] for row in preview.rows][-1] is None


def test_preview_as_of_a_past_date_counts_only_customers_who_existed_then(status_model):
    customer = Customer.objects.get(external_id="two")
    Customer.objects.filter(pk=customer.pk).update(first_seen_at=NOW - timedelta(days=5))
    preview = rules_preview(
        model=status_model, rules_by_stage=rules_by_stage_stored(model=status_model), as_of=NOW - timedelta(days=50)
    )
    assert preview.total == 2


def test_preview_writes_nothing(status_model):
    counts_before = [m.objects.count() for m in (CustomerStage, StageTransition, ClassificationRun, StageRule)]
    with CaptureQueriesContext(connection) as queries:
        rules_preview(model=status_model, rules_by_stage=active_threshold(status_model, 3))
    statements = [query["sql"].lstrip().split()[0].upper() for query in queries.captured_queries]
    assert set(statements) <= {"SELECT"}, statements
    assert [m.objects.count() for m in (CustomerStage, StageTransition, ClassificationRun, StageRule)] == counts_before
    assert stage(status_model, "active").rules.get().conditions == [
        {"feature": "order_count", "operator": ">=", "value": 2}
    ]


def test_preview_query_count_does_not_grow_with_customers(status_model):
    proposed = active_threshold(status_model, 3)
    with CaptureQueriesContext(connection) as few:
        rules_preview(model=status_model, rules_by_stage=proposed)
    for number in range(30):
        customer_with_orders(f"more-{number}", number % 4)
    with CaptureQueriesContext(connection) as many:
        preview = rules_preview(model=status_model, rules_by_stage=proposed)
    assert preview.total == 33
    assert len(many.captured_queries) == len(few.captured_queries) <= 5


def test_invalid_proposed_rules_raise_rule_error_naming_the_stage(status_model):
    active = stage(status_model, "active")
    proposed = rules_by_stage_replace(
        model=status_model, stage_id=active.pk, rules=[[{"feature": "shoe_size", "operator": ">=", "value": 2}]]
    )
    with pytest.raises(RuleError) as error:
        rules_preview(model=status_model, rules_by_stage=proposed)
    assert error.value.errors[0][0] == "active.rules[0].conditions[0].feature"


def test_as_dict_is_json_ready(status_model):
    import json

    preview = rules_preview(model=status_model, rules_by_stage=active_threshold(status_model, 3))
    data = json.loads(json.dumps(preview.as_dict()))
    assert data["moves"] == [{"from": "active", "to": "prospect", "customers": 1}]
    assert data["moving"] == 1
