"""The admin's lifecycle editing: rule editor with preview, models and stages, templates, roles, audit history."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from lifecycle.models import (
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    RunKind,
    Stage,
    StageRule,
)
from lifecycle.rules import model_validate
from lifecycle.services import model_reclassify
from lifecycle.templates import TEMPLATES, template_install

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def user_with_role(username: str, role: str, *, staff: bool = True) -> User:
    user = User.objects.create_user(username, is_staff=staff)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def ada(client) -> User:
    """A staff user in the admin group (not a superuser)."""
    user = user_with_role("ada", "admin")
    client.force_login(user)
    return user


@pytest.fixture
def delay():
    with mock.patch("lifecycle.rule_changes.reclassify_model.delay") as patched:
        yield patched


@pytest.fixture
def status_model() -> LifecycleModel:
    """The `status` template with three customers of 0, 1 and 2 orders, classified."""
    model, _ = template_install(key="status")
    for external_id, orders in [("zero", 0), ("one", 1), ("two", 2)]:
        customer = Customer.objects.create(external_id=external_id, first_seen_at=NOW - timedelta(days=100))
        for number in range(orders):
            Order.objects.create(
                external_id=f"{external_id}-o{number}",
                customer=customer,
                placed_at=NOW - timedelta(days=10 + number),
                amount=Decimal("20.00"),
            )
    model_reclassify(model=model)
    return model


def stage(model: LifecycleModel, key: str) -> Stage:
    return Stage.objects.get(model=model, key=key)


def active_rule(model: LifecycleModel) -> StageRule:
    return stage(model, "active").rules.get()


def rule_data(stage_: Stage, rows: list[tuple[str, str, str]], *, action: str = "_preview", position: int = 1) -> dict:
    data = {
        "stage": stage_.pk,
        "position": position,
        "conditions-TOTAL_FORMS": len(rows),
        "conditions-INITIAL_FORMS": 0,
        "conditions-MIN_NUM_FORMS": 0,
        "conditions-MAX_NUM_FORMS": 1000,
        action: "1",
    }
    for index, (feature, operator, value) in enumerate(rows):
        data |= {
            f"conditions-{index}-feature": feature,
            f"conditions-{index}-operator": operator,
            f"conditions-{index}-value": value,
        }
    return data


def rule_url(rule: StageRule) -> str:
    return reverse("admin:lifecycle_stagerule_change", args=[rule.pk])


def change_form_data(response) -> dict:
    """The POST data of an admin change form as rendered (model form and inline formsets)."""
    data: dict = {}

    def add(form) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:  # extra rows too, with their defaults, as a browser sends them
            add(form)
    return data


def inline_rows(data: dict, prefix: str = "stages") -> int:
    return int(data[f"{prefix}-TOTAL_FORMS"])


# --- the rule editor ------------------------------------------------------------------------------


def test_rule_editor_shows_a_row_per_condition_not_json(client, ada, status_model):
    response = client.get(rule_url(active_rule(status_model)))
    assert response.status_code == 200
    formset = response.context["formset"]
    assert formset.forms[0]["feature"].value() == "order_count"
    assert formset.forms[0]["operator"].value() == ">="
    assert formset.forms[0]["value"].value() == "2"
    html = response.content.decode()
    assert '<option value="order_count" selected>' in html
    assert "completed orders" in html  # features are described in the dropdown
    assert "&quot;feature&quot;" not in html and 'name="conditions"' not in html


def test_preview_shows_who_moves_from_where_to_where_and_saves_nothing(client, ada, status_model, delay):
    rule = active_rule(status_model)
    history = rule.history.count()
    response = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")]))
    assert response.status_code == 200
    assert response.templates[0].name == "admin/lifecycle/stagerule/rule_preview.html"
    preview = response.context["preview"]
    assert preview.moves == [("active", "prospect", 1)]
    assert preview.moving == 1
    assert b"Confirm and save" in response.content
    rule.refresh_from_db()
    assert rule.conditions == [{"feature": "order_count", "operator": ">=", "value": 2}]
    assert rule.history.count() == history
    delay.assert_not_called()


def test_confirm_saves_the_rule_and_queues_a_rule_change_run(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    rule = active_rule(status_model)
    data = rule_data(rule.stage, [("order_count", ">=", "3")])
    preview = client.post(rule_url(rule), data)
    confirm = {**dict(preview.context["carried"]), "rules_version": preview.context["rules_version"], "_confirm": "1"}
    confirm.pop("_preview", None)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(rule_url(rule), confirm)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.conditions == [{"feature": "order_count", "operator": ">=", "value": 3}]
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    record = rule.history.latest()
    assert record.history_user == ada
    assert record.history_type == "~"
    assert "1 customers" in record.history_change_reason
    assert record.prev_record.conditions[0]["value"] == 2  # before / after kept


def test_confirming_after_someone_else_changed_the_rules_shows_the_preview_again(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    rule = active_rule(status_model)
    preview = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")]))
    StageRule.objects.filter(pk=stage(status_model, "new").rules.get().pk).update(
        conditions=[{"feature": "order_count", "operator": "=", "value": 2}]
    )
    confirm = {**dict(preview.context["carried"]), "rules_version": preview.context["rules_version"], "_confirm": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(rule_url(rule), confirm)
    assert response.status_code == 200 and "preview" in response.context
    assert b"changed by someone else" in response.content
    rule.refresh_from_db()
    assert rule.conditions[0]["value"] == 2
    delay.assert_not_called()


def test_back_to_editing_keeps_what_was_typed(client, ada, status_model):
    rule = active_rule(status_model)
    response = client.post(rule_url(rule), {**rule_data(rule.stage, [("order_count", ">=", "7")], action="_edit")})
    assert response.templates[0].name == "admin/lifecycle/stagerule/rule_editor.html"
    assert response.context["formset"].forms[0]["value"].value() == "7"


def test_adding_a_rule_with_between_and_in_stores_numbers(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    target = stage(status_model, "new")
    rows = [("total_spent", "between", "10, 99.5"), ("last_feedback_score", "in", "9, 10")]
    preview = client.post(reverse("admin:lifecycle_stagerule_add"), rule_data(target, rows, position=2))
    assert preview.status_code == 200 and "preview" in preview.context
    confirm = {**dict(preview.context["carried"]), "rules_version": preview.context["rules_version"], "_confirm": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:lifecycle_stagerule_add"), confirm)
    assert response.status_code == 302
    added = target.rules.get(position=2)
    assert added.conditions == [
        {"feature": "total_spent", "operator": "between", "value": [10, 99.5]},
        {"feature": "last_feedback_score", "operator": "in", "value": [9, 10]},
    ]
    model_validate(status_model)
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    assert added.history.get().history_user == ada


BAD_CONDITIONS = [
    pytest.param(("shoe_size", ">=", "2"), "feature", "unknown feature 'shoe_size'", id="unknown feature"),
    pytest.param(("order_count", "~=", "2"), "operator", "unknown operator '~='", id="operator not valid"),
    pytest.param(("order_count", ">=", "two"), "value", "must be a whole number", id="non-numeric threshold"),
    pytest.param(("total_spent", ">=", "lots"), "value", "must be a number", id="non-numeric money"),
    pytest.param(("order_count", "between", "5, 2"), "value", "low ≤ high", id="between reversed"),
    pytest.param(("order_count", "between", "5"), "value", "two numbers", id="between one bound"),
    pytest.param(("days_since_last_order", ">", "-3"), "value", "days cannot be negative", id="negative days"),
]


@pytest.mark.parametrize(("row", "field", "message"), BAD_CONDITIONS)
def test_bad_condition_is_answered_next_to_its_field_and_nothing_is_saved(
    client, ada, status_model, delay, row, field, message
):
    rule = active_rule(status_model)
    history = StageRule.history.count()
    # A good first row and a blank one: the error must land on the third row, the bad one.
    rows = [("order_count", ">=", "1"), ("", "", ""), row]
    for action in ("_preview", "_confirm"):
        response = client.post(rule_url(rule), rule_data(rule.stage, rows, action=action))
        assert response.status_code == 200
        assert response.templates[0].name == "admin/lifecycle/stagerule/rule_editor.html"
        forms = response.context["formset"].forms
        assert not forms[0].errors and not forms[1].errors
        assert message in " ".join(forms[2].errors[field])
        row_html = response.content.decode().split('id="condition-2"')[1].split("</tr>")[0]
        assert message.replace("'", "&#x27;") in row_html
    rule.refresh_from_db()
    assert rule.conditions == [{"feature": "order_count", "operator": ">=", "value": 2}]
    assert StageRule.history.count() == history
    delay.assert_not_called()


def test_a_rule_without_conditions_is_refused(client, ada, status_model):
    rule = active_rule(status_model)
    response = client.post(rule_url(rule), rule_data(rule.stage, [("", "", "")]))
    assert response.status_code == 200
    assert "at least one condition" in str(response.context["formset"].non_form_errors())


def test_a_rule_of_a_model_without_fallback_is_refused_with_the_reason(client, ada, status_model):
    LifecycleModel.objects.filter(pk=status_model.pk).update(fallback_stage=None)
    rule = active_rule(status_model)
    response = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")]))
    assert response.status_code == 200
    assert "needs a fallback stage" in " ".join(response.context["errors"])


def test_unchanged_rule_is_not_saved_again(client, ada, status_model, delay):
    rule = active_rule(status_model)
    history = rule.history.count()
    response = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "2")]))
    assert response.status_code == 302
    assert rule.history.count() == history
    delay.assert_not_called()


def test_deleting_a_rule_shows_its_impact_and_queues_a_run(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    rule = active_rule(status_model)
    url = reverse("admin:lifecycle_stagerule_delete", args=[rule.pk])
    response = client.get(url)
    assert response.context["preview"].moves == [("active", "prospect", 1)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not StageRule.objects.filter(pk=rule.pk).exists()
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    assert StageRule.history.filter(id=rule.pk, history_type="-").get().history_user == ada


def confirm_rule(client, rule: StageRule, rows: list[tuple[str, str, str]]):
    preview = client.post(rule_url(rule), rule_data(rule.stage, rows))
    confirm = {**dict(preview.context["carried"]), "rules_version": preview.context["rules_version"], "_confirm": "1"}
    return client.post(rule_url(rule), confirm)


def test_past_rule_versions_are_shown_but_not_restored(client, ada, status_model, delay):
    rule = active_rule(status_model)
    confirm_rule(client, rule, [("order_count", ">=", "3")])
    record = rule.history.earliest()
    url = reverse("admin:lifecycle_stagerule_simple_history", args=[rule.pk, record.history_id])
    assert client.get(url).status_code == 200
    assert client.post(url, {"position": 5}).status_code == 403


def test_rule_editor_pages_use_a_bounded_number_of_queries(client, ada, status_model, django_assert_max_num_queries):
    rule = active_rule(status_model)
    with django_assert_max_num_queries(20):
        client.get(rule_url(rule))
    with django_assert_max_num_queries(25):
        client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")]))


# --- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_staff_without_the_admin_role_cannot_edit_rules_models_or_stages(client, status_model, role, delay):
    client.force_login(user_with_role("mia", role))
    rule = active_rule(status_model)
    assert client.get(reverse("admin:lifecycle_stagerule_add")).status_code == 403
    assert client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")])).status_code == 403
    model_url = reverse("admin:lifecycle_lifecyclemodel_change", args=[status_model.pk])
    assert client.post(model_url, {"name_en": "Hacked"}).status_code == 403
    stage_url = reverse("admin:lifecycle_stage_delete", args=[stage(status_model, "new").pk])
    assert client.post(stage_url, {"post": "yes"}).status_code == 403
    install = reverse("admin:lifecycle_lifecyclemodel_install_template")
    assert client.post(install, {"template": "basic"}).status_code == 403
    # Looking is allowed: the rule page renders read-only, without the preview button.
    response = client.get(rule_url(rule))
    assert response.status_code == 200 and b"Preview the impact" not in response.content
    rule.refresh_from_db()
    assert rule.conditions[0]["value"] == 2
    assert not LifecycleModel.objects.filter(key="basic").exists()
    delay.assert_not_called()


def test_users_who_are_not_staff_are_sent_to_the_admin_login(client, status_model):
    client.force_login(user_with_role("mia", "marketer", staff=False))
    response = client.get(reverse("admin:lifecycle_stagerule_add"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_superusers_can_edit(admin_client, status_model):
    assert admin_client.get(reverse("admin:lifecycle_stagerule_add")).status_code == 200


# --- models and stages ----------------------------------------------------------------------------


def model_change(client, model: LifecycleModel):
    url = reverse("admin:lifecycle_lifecyclemodel_change", args=[model.pk])
    response = client.get(url)
    assert response.status_code == 200
    return url, change_form_data(response)


def row_of(data: dict, key: str) -> str:
    """The inline prefix (e.g. stages-2) of the stage with this key."""
    for index in range(inline_rows(data)):
        if data.get(f"stages-{index}-key") == key:
            return f"stages-{index}"
    raise KeyError(key)


def test_model_page_lists_stages_in_evaluation_order_with_number_fields(client, ada, status_model):
    response = client.get(reverse("admin:lifecycle_lifecyclemodel_change", args=[status_model.pk]))
    forms = response.context["inline_admin_formsets"][0].formset.forms
    assert [f.instance.key for f in forms if f.instance.pk] == ["former", "inactive", "active", "new", "prospect"]
    assert forms[0]["priority"].value() == 1
    html = response.content.decode()
    assert 'name="stages-0-position"' in html and 'name="stages-0-priority"' in html
    assert "order_count &gt;= 2" in html  # each stage's rules, linked to the rule editor


def test_a_model_without_a_fallback_is_refused(client, ada, status_model, delay):
    url, data = model_change(client, status_model)
    data.pop(f"{row_of(data, 'prospect')}-is_fallback")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "exactly one stage" in str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    status_model.refresh_from_db()
    assert status_model.fallback_stage == stage(status_model, "prospect")
    delay.assert_not_called()


def test_two_stages_with_the_same_key_are_refused(client, ada, status_model, delay):
    url, data = model_change(client, status_model)
    data[f"{row_of(data, 'new')}-key"] = "active"
    response = client.post(url, data)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    errors = str(formset.errors) + str(formset.non_form_errors())
    assert "already has a stage with the key “active”" in errors
    assert Stage.objects.filter(model=status_model, key="new").exists()


def test_two_new_stages_with_the_same_key_are_refused(client, ada, delay):
    data = new_model_data(stages=[("first", 1, True), ("first", 2, False)])
    response = client.post(reverse("admin:lifecycle_lifecyclemodel_add"), data)
    assert response.status_code == 200
    assert "same key" in str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    assert not LifecycleModel.objects.filter(key="trial").exists()


def new_model_data(*, stages: list[tuple[str, int, bool]]) -> dict:
    data = {
        "key": "trial",
        "name_en": "Trial",
        "name_de": "Versuch",
        "description": "",
        "active": "on",
        "stages-TOTAL_FORMS": len(stages),
        "stages-INITIAL_FORMS": 0,
        "stages-MIN_NUM_FORMS": 0,
        "stages-MAX_NUM_FORMS": 1000,
    }
    for index, (key, priority, fallback) in enumerate(stages):
        data |= {
            f"stages-{index}-key": key,
            f"stages-{index}-name_en": key.title(),
            f"stages-{index}-name_de": key.title(),
            f"stages-{index}-kind": "funnel",
            f"stages-{index}-position": priority,
            f"stages-{index}-priority": priority,
            f"stages-{index}-colour": "#336699",
            f"stages-{index}-description": "",
        }
        if fallback:
            data[f"stages-{index}-is_fallback"] = "on"
    return data


def test_adding_a_model_with_stages_sets_its_fallback_and_queues_a_first_run(
    client, ada, delay, django_capture_on_commit_callbacks
):
    data = new_model_data(stages=[("buyer", 1, False), ("visitor", 2, True)])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:lifecycle_lifecyclemodel_add"), data)
    assert response.status_code == 302
    model = LifecycleModel.objects.get(key="trial")
    assert model.fallback_stage == stage(model, "visitor")
    model_validate(model)
    delay.assert_called_once_with(model.pk, RunKind.FULL)
    assert model.history.latest().history_user == ada


def test_changing_the_evaluation_order_queues_a_rule_change_run_and_renaming_does_not(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    url, data = model_change(client, status_model)
    data["name_en"] = "Customer status (renamed)"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    delay.assert_not_called()
    url, data = model_change(client, status_model)
    data[f"{row_of(data, 'active')}-priority"] = 9
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    record = Stage.history.filter(id=stage(status_model, "active").pk).latest()
    assert record.history_user == ada
    assert record.diff_against(record.prev_record).changed_fields == ["priority"]


def test_moving_the_fallback_to_another_stage(client, ada, status_model, delay, django_capture_on_commit_callbacks):
    url, data = model_change(client, status_model)
    data.pop(f"{row_of(data, 'prospect')}-is_fallback")
    data[f"{row_of(data, 'new')}-is_fallback"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    status_model.refresh_from_db()
    assert status_model.fallback_stage == stage(status_model, "new")
    record = status_model.history.latest()
    assert record.history_user == ada
    assert [c.field for c in record.diff_against(record.prev_record).changes] == ["fallback_stage"]
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)


def test_deleting_a_stage_that_customers_are_in_is_refused_with_the_count(client, ada, status_model, delay):
    url, data = model_change(client, status_model)
    data[f"{row_of(data, 'active')}-DELETE"] = "on"
    response = client.post(url, data)
    assert response.status_code == 200
    errors = str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    assert "1 customer is in it now" in errors
    assert Stage.objects.filter(model=status_model, key="active").exists()
    delay.assert_not_called()


def test_deleting_a_stage_on_its_own_page_is_refused_with_the_count(client, ada, status_model):
    for number in range(2):
        Customer.objects.create(external_id=f"lead-{number}", first_seen_at=NOW - timedelta(days=1))
    model_reclassify(model=status_model)
    new = stage(status_model, "prospect")
    assert CustomerStage.objects.filter(stage=new).count() == 3
    url = reverse("admin:lifecycle_stage_delete", args=[new.pk])
    response = client.get(url)
    assert b"3 customers are in it now" in response.content
    client.post(url, {"post": "yes"})
    assert Stage.objects.filter(pk=new.pk).exists()


def test_deleting_an_unused_stage_works_and_queues_a_run(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    spare = Stage.objects.create(model=status_model, key="vip", name_en="VIP", name_de="VIP", position=6, priority=6)
    StageRule.objects.create(stage=spare, conditions=[{"feature": "order_count", "operator": ">=", "value": 50}])
    url, data = model_change(client, status_model)
    data[f"{row_of(data, 'vip')}-DELETE"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    assert not Stage.objects.filter(pk=spare.pk).exists()
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    assert Stage.history.filter(id=spare.pk, history_type="-").get().history_user == ada


def test_a_model_with_classified_customers_cannot_be_deleted(client, ada, status_model):
    url = reverse("admin:lifecycle_lifecyclemodel_delete", args=[status_model.pk])
    response = client.get(url)
    assert b"has classified 3 customers" in response.content
    client.post(url, {"post": "yes"})
    assert LifecycleModel.objects.filter(pk=status_model.pk).exists()


def test_an_unused_model_can_be_deleted(client, ada, delay):
    model, _ = template_install(key="basic")
    url = reverse("admin:lifecycle_lifecyclemodel_delete", args=[model.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not LifecycleModel.objects.filter(pk=model.pk).exists()


# --- templates ------------------------------------------------------------------------------------


def test_installing_a_template_from_the_admin_and_again_changes_nothing(
    client, ada, delay, django_capture_on_commit_callbacks
):
    url = reverse("admin:lifecycle_lifecyclemodel_install_template")
    page = client.get(url)
    assert page.status_code == 200
    assert b"E-commerce lifecycle" in page.content
    changelist = client.get(reverse("admin:lifecycle_lifecyclemodel_changelist"))
    assert url.encode() in changelist.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"template": "ecommerce"})
    model = LifecycleModel.objects.get(key="ecommerce")
    assert response.status_code == 302 and response["Location"].endswith(f"/{model.pk}/change/")
    assert sorted(model.stages.values_list("key", flat=True)) == sorted(s.key for s in TEMPLATES["ecommerce"].stages)
    assert model.fallback_stage.key == "reach"
    model_validate(model)
    delay.assert_called_once_with(model.pk, RunKind.FULL)
    rules = StageRule.objects.filter(stage__model=model)
    assert StageRule.history.filter(id__in=rules.values("pk"), history_user=ada).count() == rules.count() == 4

    snapshot = (
        list(Stage.objects.filter(model=model).values()),
        list(rules.values()),
        StageRule.history.count(),
        Stage.history.count(),
        LifecycleModel.history.count(),
    )
    delay.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, {"template": "ecommerce"}, follow=True)
    assert b"installed already; nothing changed" in again.content
    assert snapshot == (
        list(Stage.objects.filter(model=model).values()),
        list(StageRule.objects.filter(stage__model=model).values()),
        StageRule.history.count(),
        Stage.history.count(),
        LifecycleModel.history.count(),
    )
    delay.assert_not_called()


def test_installing_an_unknown_template_is_refused(client, ada):
    response = client.post(reverse("admin:lifecycle_lifecyclemodel_install_template"), {"template": "nope"})
    assert response.status_code == 200
    assert "template" in response.context["form"].errors


# --- audit history --------------------------------------------------------------------------------


def test_history_page_shows_who_changed_a_rule_and_the_before_and_after(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    rule = active_rule(status_model)
    with django_capture_on_commit_callbacks(execute=True):
        confirm_rule(client, rule, [("order_count", ">=", "3")])
    response = client.get(reverse("admin:lifecycle_stagerule_history", args=[rule.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "ada" in html
    assert "order_count &gt;= 2" in html and "order_count &gt;= 3" in html


def test_channel_changes_are_kept_in_the_history(client, ada):
    from lifecycle.models import Channel

    channel = Channel.objects.get(key="email")
    url = reverse("admin:lifecycle_channel_change", args=[channel.pk])
    data = {"key": "email", "name_en": "E-mail", "name_de": "E-Mail", "description": "", "active": "on"}
    assert client.post(url, data).status_code == 302
    record = channel.history.latest()
    assert record.history_user == ada
    assert "name_en" in record.diff_against(record.prev_record).changed_fields
    assert b"E-mail" in client.get(reverse("admin:lifecycle_channel_history", args=[channel.pk])).content


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_staff_without_the_admin_role_can_look_at_models_stages_rules_and_history(client, status_model, role):
    client.force_login(user_with_role("mia", role))
    active = stage(status_model, "active")
    urls = [
        reverse("admin:lifecycle_lifecyclemodel_changelist"),
        reverse("admin:lifecycle_lifecyclemodel_change", args=[status_model.pk]),
        reverse("admin:lifecycle_lifecyclemodel_history", args=[status_model.pk]),
        reverse("admin:lifecycle_stage_change", args=[active.pk]),
        reverse("admin:lifecycle_stage_history", args=[active.pk]),
        reverse("admin:lifecycle_stagerule_changelist"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"Install a template" not in response.content


def test_a_second_default_model_is_refused_with_a_clear_message(client, ada, status_model):
    model, _ = template_install(key="basic")
    url, data = model_change(client, model)
    data["is_default"] = "on"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "“Customer status” is the default model" in str(response.context["adminform"].form.errors)


def test_a_stage_edited_on_its_own_page_queues_a_run_when_its_priority_changes(
    client, ada, status_model, delay, django_capture_on_commit_callbacks
):
    active = stage(status_model, "active")
    url = reverse("admin:lifecycle_stage_change", args=[active.pk])
    page = client.get(url).content.decode()
    assert "order_count &gt;= 2" in page and "+ add a rule" in page
    data = {
        "key": "active",
        "name_en": "Active",
        "name_de": "Aktiv",
        "kind": "funnel",
        "position": 3,
        "priority": 3,
        "colour": "#2b8a3e",
        "description": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    delay.assert_not_called()  # a new name moves nobody
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {**data, "priority": 8}).status_code == 302
    delay.assert_called_once_with(status_model.pk, RunKind.RULE_CHANGE)
    response = client.post(url, {**data, "key": "new"})
    assert response.status_code == 200
    assert "already has a stage with the key “new”" in str(response.context["adminform"].form.errors)


def test_add_rule_link_of_a_stage_preselects_it_and_the_next_position(client, ada, status_model):
    new = stage(status_model, "new")
    response = client.get(reverse("admin:lifecycle_stagerule_add") + f"?stage={new.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["stage"].value() == new.pk and form["position"].value() == 2


def test_add_a_condition_gives_one_more_row_and_keeps_what_was_typed(client, ada, status_model):
    rule = active_rule(status_model)
    response = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "4")], action="_add_condition"))
    forms = response.context["formset"].forms
    assert len(forms) == 2
    assert forms[0]["value"].value() == "4" and not forms[1]["feature"].value()
    assert not response.context["formset"].total_error_count()


def test_the_first_audited_change_of_a_template_rule_keeps_its_before_state_without_an_author(
    client, ada, status_model, delay
):
    rule = active_rule(status_model)
    assert not rule.history.exists()  # template_install bulk-creates rules
    confirm_rule(client, rule, [("order_count", ">=", "3")])
    first, second = rule.history.order_by("history_id")
    assert (first.history_user, first.conditions[0]["value"]) == (None, 2)
    assert (second.history_user, second.conditions[0]["value"]) == (ada, 3)


# --- backfill from the admin ------------------------------------------------------------------------------


def backfill_url(model: LifecycleModel) -> str:
    return reverse("admin:lifecycle_lifecyclemodel_backfill", args=[model.pk])


def test_admin_queues_a_backfill_after_commit(client, ada, django_capture_on_commit_callbacks):
    model = LifecycleModel.objects.get(key="status")
    assert (
        backfill_url(model)
        in client.get(reverse("admin:lifecycle_lifecyclemodel_change", args=[model.pk])).content.decode()
    )
    with mock.patch("lifecycle.tasks.backfill_model.delay") as queued, django_capture_on_commit_callbacks(execute=True):
        response = client.post(backfill_url(model), {"start": "1997-01-01", "end": "1998-06-30", "step": "week"})
    assert response.status_code == 302
    queued.assert_called_once_with(model.pk, "1997-01-01", "1998-06-30", "week")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"start": "1998-06-30", "end": "1997-01-01", "step": "week"}, "is after the end"),
        ({"start": "soon", "end": "1997-01-01", "step": "week"}, "Enter a valid date"),
        ({"start": "1997-01-01", "end": "2999-01-01", "step": "week"}, "must be before today"),
        ({"start": "1997-01-01", "end": "1997-02-01", "step": "hourly"}, "Select a valid choice"),
    ],
)
def test_admin_backfill_refuses_bad_ranges_inline(client, ada, data, words):
    model = LifecycleModel.objects.get(key="status")
    with mock.patch("lifecycle.tasks.backfill_model.delay") as queued:
        response = client.post(backfill_url(model), data)
    assert response.status_code == 200 and words in response.content.decode()
    queued.assert_not_called()


def test_only_admins_start_a_backfill(client):
    client.force_login(user_with_role("mark", "marketer"))
    model = LifecycleModel.objects.get(key="status")
    with mock.patch("lifecycle.tasks.backfill_model.delay") as queued:
        response = client.post(backfill_url(model), {"start": "1997-01-01", "end": "1997-02-01", "step": "week"})
    assert response.status_code in {302, 403}
    queued.assert_not_called()
