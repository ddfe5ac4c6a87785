"""Incremental periodic passes: only changed customers and those crossing a time threshold are classified, and the
result equals a full pass (a property test over random histories, every shipped template and a model using every
feature and operator)."""

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.models import (
    Channel,
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    OrderStatus,
    RunKind,
    RunStatus,
    Stage,
    StageRule,
    StageTransition,
    TouchpointKind,
)
from lifecycle.rules import classification_queryset
from lifecycle.services import customers_mark_changed, model_reclassify
from lifecycle.templates import template_install
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, TouchpointFactory, at

pytestmark = pytest.mark.django_db

START = at("2024-01-01", 0)
HOURS = st.sampled_from([0, 6, 12, 23])  # a small grid, so that events fall exactly on day boundaries too


def moment(day: int, hour: int):
    return START + timedelta(days=day, hours=hour)


def probe_model() -> LifecycleModel:
    """A model whose rules use every lifecycle feature and every operator, with day counts the history crosses."""
    model = LifecycleModel.objects.create(key="probe", name_en="Probe", name_de="Probe")
    rules = [
        [{"feature": "days_since_first_seen", "operator": "between", "value": [3, 9]}],
        [{"feature": "days_since_first_order", "operator": "=", "value": 20}],
        [{"feature": "days_since_last_order", "operator": "in", "value": [5, 40]}],
        [
            {"feature": "days_since_last_order", "operator": "!=", "value": 60},
            {"feature": "total_spent", "operator": ">=", "value": 90},
        ],
        [
            {"feature": "orders_last_365d", "operator": ">=", "value": 2},
            {"feature": "avg_order_value", "operator": "<", "value": 40},
        ],
        [{"feature": "engagements_last_30d", "operator": ">", "value": 1}],
        [{"feature": "engagements_since_last_order", "operator": ">=", "value": 1}],
        [{"feature": "referral_count", "operator": ">=", "value": 1}],
        [{"feature": "last_feedback_score", "operator": "<=", "value": 6}],
        [{"feature": "days_since_first_seen", "operator": "<", "value": 2}],
    ]
    stages = []
    for position, conditions in enumerate(rules, start=1):
        stage = Stage.objects.create(
            model=model,
            key=f"s{position}",
            name_en=f"S{position}",
            name_de=f"S{position}",
            position=position,
            priority=position,
        )
        StageRule.objects.create(stage=stage, conditions=conditions)
        stages.append(stage)
    fallback = Stage.objects.create(
        model=model, key="rest", name_en="Rest", name_de="Rest", position=len(rules) + 1, priority=len(rules) + 1
    )
    model.fallback_stage = fallback
    model.save()
    return model


@pytest.fixture
def models():
    for key in ("ecommerce", "loyalty", "basic"):
        template_install(key=key)
    probe_model()
    return list(LifecycleModel.objects.filter(active=True).order_by("key"))


def full_pass_stages(model: LifecycleModel, as_of) -> dict[int, int]:
    """What a full pass as of `as_of` would set: the compiled rules evaluated for every customer."""
    return dict(classification_queryset(model, as_of).values_list("id", "target_stage_id"))


def current(model: LifecycleModel) -> dict[int, int]:
    return dict(CustomerStage.objects.filter(model=model).values_list("customer_id", "stage_id"))


customer_st = st.fixed_dictionaries(
    {
        "first_seen": st.integers(0, 500),
        "orders": st.lists(st.tuples(st.integers(0, 500), HOURS, st.booleans(), st.integers(5, 120)), max_size=4),
        "engagements": st.lists(st.tuples(st.integers(0, 500), HOURS), max_size=3),
        "feedback": st.lists(st.tuples(st.integers(0, 500), st.integers(0, 10)), max_size=1),
        "referrer": st.one_of(st.none(), st.integers(0, 7)),
    }
)
change_st = st.one_of(
    st.tuples(st.just("order"), st.integers(0, 7), st.integers(0, 700), HOURS),
    st.tuples(st.just("engagement"), st.integers(0, 7), st.integers(0, 700), HOURS),
    st.tuples(st.just("cancel"), st.integers(0, 7), st.just(0), st.just(0)),
    st.tuples(st.just("customer"), st.integers(0, 7), st.integers(0, 700), HOURS),
)


def history_create(customers: list[dict]) -> list[Customer]:
    email = Channel.objects.get(key="email")
    created = [CustomerFactory(first_seen_at=moment(data["first_seen"], 0)) for data in customers]
    for customer, data in zip(created, customers, strict=True):
        for day, hour, completed, amount in data["orders"]:
            OrderFactory(
                customer=customer,
                placed_at=moment(day, hour),
                amount=amount,
                status=OrderStatus.COMPLETED if completed else OrderStatus.CANCELLED,
            )
        for day, hour in data["engagements"]:
            TouchpointFactory(
                customer=customer, occurred_at=moment(day, hour), channel=email, kind=TouchpointKind.EMAIL_CLICK
            )
        for day, score in data["feedback"]:
            FeedbackFactory(customer=customer, submitted_at=moment(day, 12), score=score)
        if data["referrer"] is not None and data["referrer"] < len(created) and created[data["referrer"]] != customer:
            customer.referred_by = created[data["referrer"]]
            customer.save(update_fields=["referred_by"])
    return created


def change_apply(change: tuple, customers: list[Customer]) -> None:
    """One ingestion-like change, recorded in the outbox as ingestion does."""
    kind, index, day, hour = change
    if kind == "customer":
        new = CustomerFactory(first_seen_at=moment(day, hour), referred_by=customers[index % len(customers)])
        customers_mark_changed(customer_ids=[new.pk])
        return
    customer = customers[index % len(customers)]
    if kind == "order":
        OrderFactory(customer=customer, placed_at=moment(day, hour), amount=30)
    elif kind == "engagement":
        TouchpointFactory(
            customer=customer,
            occurred_at=moment(day, hour),
            channel=Channel.objects.get(key="email"),
            kind=TouchpointKind.SITE_VISIT,
        )
    else:
        Order.objects.filter(customer=customer).update(status=OrderStatus.CANCELLED)
    customers_mark_changed(customer_ids=[customer.pk])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    customers=st.lists(customer_st, min_size=1, max_size=8),
    first_pass=st.tuples(st.integers(0, 500), HOURS),
    gap=st.tuples(st.integers(0, 400), HOURS),
    changes=st.lists(change_st, max_size=5),
)
def test_an_incremental_pass_equals_a_full_pass(models, customers, first_pass, gap, changes):
    with transaction.atomic():
        created = history_create(customers)
        t0 = moment(*first_pass)
        t1 = t0 + timedelta(days=gap[0], hours=gap[1])
        for model in models:
            model_reclassify(model=model, kind=RunKind.FULL, as_of=t0)
        for change in changes:
            change_apply(change, created)
        for model in models:
            run = model_reclassify(model=model, kind=RunKind.PERIODIC, as_of=t1)
            assert run.incremental and run.status == RunStatus.COMPLETED
            assert current(model) == full_pass_stages(model, t1), model.key
            # every current stage is the end of the customer's transition chain
            latest = {}
            for customer_id, to_stage in (
                StageTransition.objects.filter(model=model)
                .order_by("at", "id")
                .values_list("customer_id", "to_stage_id")
            ):
                latest[customer_id] = to_stage
            assert latest == current(model)
        transaction.set_rollback(True)


def test_a_pass_with_one_changed_customer_evaluates_only_that_customer(models):
    status = LifecycleModel.objects.get(key="status")
    customers = [CustomerFactory(first_seen_at=moment(0, 0)) for _ in range(40)]
    for customer in customers:
        OrderFactory(customer=customer, placed_at=moment(10, 12))
    model_reclassify(model=status, as_of=moment(30, 12))
    OrderFactory(customer=customers[7], placed_at=moment(31, 9))
    customers_mark_changed(customer_ids=[customers[7].pk])
    run = model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(32, 12))
    assert run.incremental and run.customers_evaluated == 1 and run.transitions == 1
    assert CustomerStage.objects.get(model=status, customer=customers[7]).stage.key == "active"
    nothing = model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(33, 12))
    assert nothing.incremental and nothing.customers_evaluated == 0


def test_the_day_a_threshold_passes_only_those_customers_are_evaluated(models):
    """`inactive` after more than 180 days: the pass on day 191 sees the customers whose last order was day 10."""
    status = LifecycleModel.objects.get(key="status")
    early = [OrderFactory(placed_at=moment(10, 12)).customer for _ in range(3)]
    later = [OrderFactory(placed_at=moment(60, 12)).customer for _ in range(5)]
    model_reclassify(model=status, as_of=moment(190, 11))
    run = model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(191, 13))
    assert run.incremental and run.customers_evaluated == len(early) and run.transitions == len(early)
    assert {c.pk for c in early} == set(
        CustomerStage.objects.filter(model=status, stage__key="inactive").values_list("customer_id", flat=True)
    )
    assert len(later) == CustomerStage.objects.filter(model=status, stage__key="new").count()


def test_changed_rules_a_backfill_or_a_failure_make_the_next_periodic_pass_full(models):
    status = LifecycleModel.objects.get(key="status")
    OrderFactory(placed_at=moment(10, 12))
    model_reclassify(model=status, as_of=moment(20, 0))
    assert model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(21, 0)).incremental

    rule = StageRule.objects.get(stage__model=status, stage__key="inactive")
    rule.conditions = [
        {"feature": "order_count", "operator": ">=", "value": 1},
        {"feature": "days_since_last_order", "operator": ">", "value": 90},
    ]
    rule.save()
    after_edit = model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(22, 0))
    assert not after_edit.incremental and after_edit.customers_evaluated == 1
    assert model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(23, 0)).incremental

    ClassificationRun.objects.create(model=status, kind=RunKind.FULL, as_of=moment(24, 0), status=RunStatus.FAILED)
    assert not model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(25, 0)).incremental
    assert not model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(1, 0)).incremental  # the past


def test_a_model_using_a_feature_without_clocks_is_always_passed_in_full(models):
    """p_alive changes with the nightly fit, not with an event: such models get full periodic passes."""
    status = LifecycleModel.objects.get(key="status")
    rule = StageRule.objects.get(stage__model=status, stage__key="active")
    rule.conditions = [*rule.conditions, {"feature": "p_alive", "operator": ">=", "value": 0}]
    rule.save()
    model_reclassify(model=status, as_of=moment(20, 0))
    assert not model_reclassify(model=status, kind=RunKind.PERIODIC, as_of=moment(21, 0)).incremental


def test_a_second_periodic_run_while_one_runs_is_refused(models):
    from django.db import IntegrityError

    from lifecycle.services import classification_run_start

    status = LifecycleModel.objects.get(key="status")
    classification_run_start(model=status, kind=RunKind.PERIODIC)
    with pytest.raises(IntegrityError):
        classification_run_start(model=status, kind=RunKind.PERIODIC)
    classification_run_start(model=status, kind=RunKind.FULL)  # other kinds are not held up
