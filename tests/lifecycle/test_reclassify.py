import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lifecycle import services
from lifecycle.cdnow import cdnow_import
from lifecycle.models import (
    ChangedCustomer,
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    OrderStatus,
    RunKind,
    RunStatus,
    StageTransition,
)
from lifecycle.selectors import stage_counts
from lifecycle.services import customers_reclassify, model_reclassify
from lifecycle.templates import template_install
from tests.factories import CustomerFactory, OrderFactory, at

pytestmark = pytest.mark.django_db

AS_OF = at("2024-06-30", 18)


def status_by_hand(as_of) -> dict[str, str]:
    """SPEC §3's `status` rules computed in plain Python, independently of the rule compiler."""
    expected = {}
    for customer in Customer.objects.filter(first_seen_at__lte=as_of):
        days = sorted(
            o.placed_at
            for o in Order.objects.filter(customer=customer, status=OrderStatus.COMPLETED, placed_at__lte=as_of)
        )
        since_last = (as_of - days[-1]).days if days else None
        if days and since_last > 365:
            expected[customer.external_id] = "former"
        elif days and since_last > 180:
            expected[customer.external_id] = "inactive"
        elif len(days) >= 2:
            expected[customer.external_id] = "active"
        elif len(days) == 1:
            expected[customer.external_id] = "new"
        else:
            expected[customer.external_id] = "prospect"
    return expected


def current_stages(model_key="status") -> dict[str, str]:
    return dict(CustomerStage.objects.filter(model__key=model_key).values_list("customer__external_id", "stage__key"))


@pytest.fixture
def history():
    """A prospect, a new, an active, an inactive and a former customer as of AS_OF, plus a cancelled order and a
    customer first seen after AS_OF."""
    CustomerFactory(external_id="lead", first_seen_at=at("2024-06-01"))
    OrderFactory(customer=CustomerFactory(external_id="new"), placed_at=at("2024-06-01"))
    active = CustomerFactory(external_id="active")
    OrderFactory(customer=active, placed_at=at("2024-02-01"))
    OrderFactory(customer=active, placed_at=at("2024-06-20"))
    OrderFactory(customer=CustomerFactory(external_id="inactive"), placed_at=AS_OF - timedelta(days=181))
    gone = CustomerFactory(external_id="former", first_seen_at=at("2022-01-01"))
    OrderFactory(customer=gone, placed_at=at("2023-01-01"))
    OrderFactory(customer=gone, placed_at=at("2023-03-01"))
    cancelled = CustomerFactory(external_id="cancelled")
    OrderFactory(customer=cancelled, placed_at=at("2024-06-01"), status=OrderStatus.CANCELLED)
    CustomerFactory(external_id="future", first_seen_at=at("2024-07-05"))


@pytest.fixture
def status_model():
    return LifecycleModel.objects.get(key="status")


def test_full_run_matches_an_independent_computation_of_the_spec_rules(history, status_model):
    run = model_reclassify(model=status_model, as_of=AS_OF)
    assert run.status == RunStatus.COMPLETED and run.finished_at is not None
    assert (
        current_stages()
        == status_by_hand(AS_OF)
        == {
            "lead": "prospect",
            "new": "new",
            "active": "active",
            "inactive": "inactive",
            "former": "former",
            "cancelled": "prospect",
        }
    )
    assert run.customers_evaluated == 6 and run.transitions == 6


def test_transitions_record_from_to_at_cause_and_run(history, status_model):
    run = model_reclassify(model=status_model, kind=RunKind.PERIODIC, as_of=AS_OF)
    transition = StageTransition.objects.get(customer__external_id="active")
    assert (transition.from_stage, transition.to_stage.key) == (None, "active")
    assert (transition.at, transition.cause, transition.run) == (AS_OF, "periodic", run)
    since = CustomerStage.objects.get(customer__external_id="active").since
    assert since == AS_OF


def test_running_the_same_run_twice_writes_no_new_transitions(history, status_model):
    model_reclassify(model=status_model, as_of=AS_OF)
    second = model_reclassify(model=status_model, as_of=AS_OF)
    assert second.transitions == 0 and second.customers_evaluated == 6
    assert StageTransition.objects.count() == 6


def test_time_alone_moves_a_customer_to_inactive(history, status_model):
    model_reclassify(model=status_model, as_of=AS_OF)
    later = AS_OF + timedelta(days=170)
    run = model_reclassify(model=status_model, kind=RunKind.PERIODIC, as_of=later)
    moved = StageTransition.objects.filter(run=run).values_list(
        "customer__external_id", "from_stage__key", "to_stage__key"
    )
    assert ("new", "new", "inactive") in set(moved)
    assert current_stages() == status_by_hand(later)


def test_one_customer_moves_after_an_order(status_model):
    customer = CustomerFactory(first_seen_at=timezone.now() - timedelta(days=30))
    customers_reclassify(customer_ids=[customer.pk])
    assert current_stages()[customer.external_id] == "prospect"
    OrderFactory(customer=customer, placed_at=timezone.now() - timedelta(days=1))
    runs = customers_reclassify(customer_ids=[customer.pk])
    assert current_stages()[customer.external_id] == "new"
    transition = StageTransition.objects.filter(customer=customer).latest("id")
    assert (transition.cause, transition.from_stage.key, transition.to_stage.key) == ("event", "prospect", "new")
    assert runs[0].kind == RunKind.EVENT and runs[0].customers_evaluated == 1


def test_an_event_run_in_two_models_fails_whole_and_leaves_the_outbox_for_the_periodic_pass(status_model, monkeypatch):
    LifecycleModel.objects.filter(pk=template_install(key="ecommerce")[0].pk).update(active=True)
    customer = CustomerFactory(first_seen_at=timezone.now() - timedelta(days=30))
    OrderFactory(customer=customer, placed_at=timezone.now() - timedelta(days=1))
    services.customers_mark_changed(customer_ids=[customer.pk])
    real = services.customers_classify

    def second_model_fails(**kwargs):
        if kwargs["model"].key != "status":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "customers_classify", second_model_fails)
    with pytest.raises(RuntimeError):
        customers_reclassify(customer_ids=[customer.pk])
    assert not ClassificationRun.objects.exists() and not CustomerStage.objects.exists()
    assert set(ChangedCustomer.objects.values_list("model__key", "customer")) == {
        ("status", customer.pk),
        ("ecommerce", customer.pk),
    }

    monkeypatch.setattr(services, "customers_classify", real)
    runs = customers_reclassify(customer_ids=[customer.pk])
    assert sorted((run.model.key, run.status, run.transitions) for run in runs) == [
        ("ecommerce", RunStatus.COMPLETED, 1),
        ("status", RunStatus.COMPLETED, 1),
    ]
    assert not ChangedCustomer.objects.exists()
    assert current_stages()[customer.external_id] == "new"


def test_an_event_run_reads_each_models_rules_once(status_model):
    LifecycleModel.objects.filter(pk=template_install(key="ecommerce")[0].pk).update(active=True)
    customer = CustomerFactory(first_seen_at=timezone.now() - timedelta(days=30))
    with CaptureQueriesContext(connection) as captured:
        customers_reclassify(customer_ids=[customer.pk])
    rule_reads = [query["sql"] for query in captured if 'FROM "lifecycle_stagerule"' in query["sql"]]
    assert len(rule_reads) == 2  # one per active model


def test_chunks_give_the_same_result(history, status_model, settings):
    settings.CLM_CLASSIFY_CHUNK_SIZE = 2
    run = model_reclassify(model=status_model, as_of=AS_OF)
    assert current_stages() == status_by_hand(AS_OF)
    assert run.customers_evaluated == 6


def test_query_count_depends_on_chunks_not_customers(status_model, settings):
    settings.CLM_CLASSIFY_CHUNK_SIZE = 1_000_000

    def queries_for_a_run() -> int:
        CustomerStage.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            model_reclassify(model=status_model, as_of=AS_OF)
        return len(captured)

    OrderFactory.create_batch(5)
    few = queries_for_a_run()
    OrderFactory.create_batch(50)
    assert queries_for_a_run() == few


def test_a_failing_chunk_rolls_back_alone_and_marks_the_run_failed(history, status_model, settings, monkeypatch):
    settings.CLM_CLASSIFY_CHUNK_SIZE = 3
    real = services.customers_classify
    calls = []

    def second_chunk_fails(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "customers_classify", second_chunk_fails)
    with pytest.raises(RuntimeError):
        model_reclassify(model=status_model, as_of=AS_OF)
    run = ClassificationRun.objects.get()
    assert run.status == RunStatus.FAILED and "disk full" in run.error and run.finished_at
    first_chunk = set(current_stages())
    assert first_chunk and len(first_chunk) < 6
    assert StageTransition.objects.count() == len(first_chunk)

    monkeypatch.setattr(services, "customers_classify", real)
    rerun = model_reclassify(model=status_model, as_of=AS_OF)
    assert rerun.status == RunStatus.COMPLETED
    assert current_stages() == status_by_hand(AS_OF)
    assert StageTransition.objects.count() == 6


def test_a_model_with_an_invalid_rule_fails_before_writing(history, status_model):
    rule = status_model.stages.get(key="active").rules.get()
    rule.conditions = [{"feature": "shoe_size", "operator": ">", "value": 1}]
    rule.save()
    with pytest.raises(Exception, match="shoe_size"):
        model_reclassify(model=status_model, as_of=AS_OF)
    assert not CustomerStage.objects.exists()


def test_reclassify_command_prints_counts_as_json(history):
    out = StringIO()
    call_command("reclassify", "--model", "status", "--as-of", "2024-06-30", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result == {
        "model": "status",
        "as_of": "2024-06-30",
        "counts": {"prospect": 2, "new": 1, "active": 1, "inactive": 1, "former": 1},
        "transitions": 6,
    }


def test_reclassify_command_refuses_unknown_model_and_bad_date(history):
    with pytest.raises(CommandError, match="Unknown model 'nope'; known: status"):
        call_command("reclassify", "--model", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("reclassify", "--as-of", "30/06/2024", stdout=StringIO())
    assert not ClassificationRun.objects.exists()


def test_hourly_periodic_pass_is_scheduled_and_runs_every_active_model(history, monkeypatch):
    from django_celery_beat.models import PeriodicTask

    from clm.celery import app
    from lifecycle.tasks import reclassify_active_models

    task = PeriodicTask.objects.get(task="lifecycle.tasks.reclassify_active_models")
    assert task.interval.every == 3600 and task.enabled
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    reclassify_active_models.apply()
    run = ClassificationRun.objects.get()
    assert run.kind == RunKind.PERIODIC and run.status == RunStatus.COMPLETED


def test_cdnow_status_counts_match_an_independent_computation():
    """The whole CDNOW history as of its last day, against SPEC §3's rules computed from the raw file."""
    from collections import defaultdict
    from datetime import UTC, datetime

    from lifecycle.cdnow import cdnow_default_path

    cdnow_import(path=cdnow_default_path())
    model = LifecycleModel.objects.get(key="status")
    as_of = datetime(1998, 6, 30, 23, 59, 59, tzinfo=UTC)
    model_reclassify(model=model, as_of=as_of)

    days = defaultdict(set)
    for line in cdnow_default_path().read_text().splitlines()[1:]:
        fields = line.split()
        days[fields[0]].add(fields[1])
    expected = defaultdict(int)
    for purchase_days in days.values():
        since_last = (as_of - datetime.strptime(max(purchase_days), "%Y%m%d").replace(tzinfo=UTC)).days
        key = (
            "former"
            if since_last > 365
            else "inactive"
            if since_last > 180
            else ("active" if len(purchase_days) >= 2 else "new")
        )
        expected[key] += 1
    assert stage_counts(model=model) == {"prospect": 0, "new": 0, "active": 0, "inactive": 0, "former": 0} | expected
    assert sum(expected.values()) == 23570
