"""The rule-change workflow as a service (lifecycle.rule_changes), without the admin: the version check, the runs
queued on commit, the audit history, the deletion checks."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from lifecycle.models import LifecycleModel, RunKind, Stage, StageRule
from lifecycle.rule_changes import (
    RulesChangedSincePreview,
    classification_changed_run_queue,
    classification_signature,
    model_run_queue,
    rule_change_preview,
    rule_delete,
    rule_save,
    stage_delete,
)
from tests.lifecycle import test_admin
from tests.lifecycle.test_admin import active_rule, stage

# The admin tests' fixtures: delay (the queued runs) and status_model (3 customers of 0, 1 and 2 orders, classified).
delay, status_model = test_admin.delay, test_admin.status_model

pytestmark = pytest.mark.django_db

AT_LEAST_THREE_ORDERS = [{"feature": "order_count", "operator": ">=", "value": 3}]


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada")


def propose(rule: StageRule, conditions: list[dict]):
    return rule_change_preview(stage=rule.stage, rule=rule, position=rule.position, conditions=conditions)


def test_a_preview_shows_who_would_move_and_writes_nothing(status_model, delay, django_capture_on_commit_callbacks):
    rule = active_rule(status_model)
    with django_capture_on_commit_callbacks() as queued:
        change = propose(rule, AT_LEAST_THREE_ORDERS)
    assert change.preview.moves == [("active", "prospect", 1)]
    assert change.proposed[rule.stage_id] == [AT_LEAST_THREE_ORDERS]
    assert change.stored[rule.stage_id] == [[{"feature": "order_count", "operator": ">=", "value": 2}]]
    rule.refresh_from_db()
    assert rule.conditions[0]["value"] == 2
    assert not queued and not rule.history.exists()


@pytest.mark.parametrize("someone_else_changed_the_rules", [True, False], ids=["rules changed", "wrong version"])
def test_a_stale_version_is_refused_and_nothing_is_written(
    status_model, delay, ada, django_capture_on_commit_callbacks, someone_else_changed_the_rules
):
    rule = active_rule(status_model)
    change = propose(rule, AT_LEAST_THREE_ORDERS)
    expected = change.version
    if someone_else_changed_the_rules:  # after the preview, before the confirmation
        StageRule.objects.filter(stage=stage(status_model, "new")).update(conditions=AT_LEAST_THREE_ORDERS)
    else:
        expected = "0" * 16
    histories = StageRule.history.count()
    with django_capture_on_commit_callbacks(execute=True) as queued, pytest.raises(RulesChangedSincePreview) as refused:
        rule_save(change=change, expected_version=expected, user=ada)
    assert "changed by someone else" in " ".join(refused.value.messages)
    rule.refresh_from_db()
    assert rule.conditions[0]["value"] == 2
    assert StageRule.history.count() == histories
    assert not queued
    delay.assert_not_called()


def test_a_saved_change_queues_exactly_one_rule_change_run_on_commit(
    status_model, delay, ada, django_capture_on_commit_callbacks
):
    rule = active_rule(status_model)
    change = propose(rule, AT_LEAST_THREE_ORDERS)
    with django_capture_on_commit_callbacks() as queued:
        saved = rule_save(change=change, expected_version=change.version, user=ada)
        delay.assert_not_called()  # not before the change is committed
    assert saved.pk == rule.pk and saved.conditions == AT_LEAST_THREE_ORDERS
    assert len(queued) == 1
    queued[0]()
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)


def test_history_records_the_user_and_the_reason(status_model, delay, ada, django_capture_on_commit_callbacks):
    rule = active_rule(status_model)
    change = propose(rule, AT_LEAST_THREE_ORDERS)
    with django_capture_on_commit_callbacks(execute=True):
        rule_save(change=change, expected_version=change.version, user=ada)
    before, after = rule.history.order_by("history_id")
    assert (before.history_user, before.conditions[0]["value"]) == (None, 2)  # the installed state, kept first
    assert (after.history_user, after.conditions[0]["value"]) == (ada, 3)
    assert after.history_change_reason == "rule change confirmed after preview: 1 customers to move"

    rule_id = rule.pk
    with django_capture_on_commit_callbacks(execute=True):
        rule_delete(rule=rule, user=ada)
    assert not StageRule.objects.filter(pk=rule_id).exists()
    deleted = StageRule.history.get(id=rule_id, history_type="-")
    assert (deleted.history_user, deleted.history_change_reason) == (ada, "rule deleted")
    assert delay.call_count == 2


def test_a_new_rule_is_saved_with_its_history(status_model, delay, ada, django_capture_on_commit_callbacks):
    new = stage(status_model, "new")
    change = rule_change_preview(stage=new, position=2, conditions=AT_LEAST_THREE_ORDERS)
    with django_capture_on_commit_callbacks(execute=True):
        saved = rule_save(change=change, expected_version=change.version, user=ada)
    assert list(new.rules.values_list("position", "conditions")) == [
        (1, [{"feature": "order_count", "operator": "=", "value": 1}]),
        (2, AT_LEAST_THREE_ORDERS),
    ]
    assert saved.history.get().history_user == ada
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)


def test_an_edit_that_changes_the_classification_queues_one_run_and_one_that_does_not_none(
    status_model, delay, django_capture_on_commit_callbacks
):
    active = stage(status_model, "active")
    before = classification_signature(model_id=status_model.pk)
    Stage.objects.filter(pk=active.pk).update(name_en="Active (renamed)")
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert classification_changed_run_queue(model=status_model, before=before) is None
    assert not queued

    Stage.objects.filter(pk=active.pk).update(priority=9)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert classification_changed_run_queue(model=status_model, before=before) == RunKind.RULE_CHANGE
    assert len(queued) == 1
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)


def test_a_new_model_gets_a_first_full_run_and_an_inactive_one_none(delay, django_capture_on_commit_callbacks):
    model = LifecycleModel.objects.create(key="trial", name_en="Trial", name_de="Versuch")
    with django_capture_on_commit_callbacks(execute=True):
        assert classification_changed_run_queue(model=model, before=None) == RunKind.FULL
    delay.assert_called_once_with(model.pk, RunKind.FULL)
    delay.reset_mock()
    model.active = False
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert not model_run_queue(model=model, kind=RunKind.RULE_CHANGE)
    assert not queued
    delay.assert_not_called()


def test_a_run_the_broker_refuses_leaves_the_change_saved_and_is_reported(
    status_model, delay, ada, django_capture_on_commit_callbacks
):
    delay.side_effect = ConnectionError("broker down")
    rule = active_rule(status_model)
    change = propose(rule, AT_LEAST_THREE_ORDERS)
    not_queued = []
    with django_capture_on_commit_callbacks(execute=True):
        rule_save(change=change, expected_version=change.version, user=ada, on_queue_failure=not_queued.append)
    assert not_queued == [status_model]
    rule.refresh_from_db()
    assert rule.conditions == AT_LEAST_THREE_ORDERS


def test_a_stage_customers_are_in_is_not_deleted_and_an_unused_one_is(
    status_model, delay, ada, django_capture_on_commit_callbacks
):
    active = stage(status_model, "active")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as refused:
        stage_delete(stage=active, user=ada)
    assert "1 customer is in it now" in " ".join(refused.value.messages)
    assert Stage.objects.filter(pk=active.pk).exists()
    delay.assert_not_called()

    spare = Stage.objects.create(model=status_model, key="vip", name_en="VIP", name_de="VIP", position=6, priority=6)
    spare_id = spare.pk
    with django_capture_on_commit_callbacks(execute=True):
        stage_delete(stage=spare, user=ada)
    assert not Stage.objects.filter(pk=spare_id).exists()
    assert Stage.history.get(id=spare_id, history_type="-").history_user == ada
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
