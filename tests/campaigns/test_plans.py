"""Channel plans: the matrix, create / partial update with validation, permissions, audit history."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from campaigns.models import ChannelPlan
from campaigns.plans import (
    ChannelPlanExists,
    channel_plan_create,
    channel_plan_matrix,
    channel_plan_update,
    channel_plan_upsert,
)
from lifecycle.models import Channel, LifecycleModel, Stage
from tests.conftest import error_fields

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/campaigns/plans/"
STATUS_STAGES = ["prospect", "new", "active", "inactive", "former"]


def stage(model: LifecycleModel, key: str) -> Stage:
    return Stage.objects.get(model=model, key=key)


def channel(key: str) -> Channel:
    return Channel.objects.get(key=key)


def plan_for(model: LifecycleModel, stage_key: str, channel_key: str, **fields) -> ChannelPlan:
    values = {"objective": f"{stage_key} via {channel_key}", **fields}
    return channel_plan_create(stage=stage(model, stage_key), channel=channel(channel_key), model=model, **values)


def snapshot() -> tuple[list, int]:
    """Every plan's values and the number of history rows: what a refused request must leave unchanged."""
    return list(ChannelPlan.objects.order_by("pk").values()), ChannelPlan.history.count()


# --- the matrix -----------------------------------------------------------------------------------


def test_the_matrix_has_the_stages_in_funnel_order_as_rows_and_the_active_channels_as_columns(status_model):
    email_active = plan_for(status_model, "active", "email", kpi="repeat purchase rate (%)", kpi_target=30)
    plan_for(status_model, "inactive", "paid_ads")
    matrix = channel_plan_matrix(model=status_model)
    assert [s.key for s in matrix["stages"]] == STATUS_STAGES
    columns = [c.key for c in matrix["channels"]]
    assert columns == sorted(Channel.objects.filter(active=True).values_list("key", flat=True))
    rows = {row.stage.key: dict(zip(columns, row.cells, strict=True)) for row in matrix["rows"]}
    assert rows["active"]["email"] == email_active
    assert rows["active"]["paid_ads"] is None
    assert rows["inactive"]["paid_ads"].objective == "inactive via paid_ads"
    assert sum(cell is not None for row in rows.values() for cell in row.values()) == 2
    assert [(p.stage.key, p.channel.key) for p in matrix["plans"]] == [("active", "email"), ("inactive", "paid_ads")]


def test_the_matrix_leaves_out_other_models_plans_and_inactive_channels_columns(status_model, ecommerce_model):
    plan_for(ecommerce_model, "retention", "email")
    plan_for(status_model, "new", "direct")
    Channel.objects.filter(key="direct").update(active=False)
    matrix = channel_plan_matrix(model=status_model)
    assert "direct" not in [c.key for c in matrix["channels"]]
    assert all(cell is None for row in matrix["rows"] for cell in row.cells)
    # The flat list still shows the plan, so nothing planned is hidden.
    assert [(p.stage.key, p.channel.key) for p in matrix["plans"]] == [("new", "direct")]


def test_get_plans_answers_the_matrix_and_the_flat_list_with_keys(status_model, reader):
    plan_for(status_model, "active", "email", kpi="repeat purchase rate (%)", kpi_target="30", owner="CRM team")
    response = reader.get(PLANS, {"model": "status"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "status"
    assert [s["key"] for s in body["stages"]] == STATUS_STAGES
    assert list(body["stages"][0].items()) == [
        ("key", "prospect"),
        ("name", "Prospect"),
        ("name_de", "Interessent"),
        ("kind", "funnel"),
        ("position", 1),
    ]
    active = next(row for row in body["rows"] if row["stage"] == "active")
    cells = {cell["channel"]: cell["plan"] for cell in active["cells"]}
    assert cells["paid_ads"] is None
    plan = cells["email"]
    assert {k: plan[k] for k in ("model", "stage", "channel", "kpi", "kpi_target", "owner", "active")} == {
        "model": "status",
        "stage": "active",
        "channel": "email",
        "kpi": "repeat purchase rate (%)",
        "kpi_target": 30.0,
        "owner": "CRM team",
        "active": True,
    }
    assert body["plans"] == [plan]


def test_get_plans_defaults_to_the_default_model_and_refuses_an_unknown_one(status_model, reader):
    assert reader.get(PLANS).json()["model"] == "status"
    response = reader.get(PLANS, {"model": "nope"})
    assert response.status_code == 400
    assert "Unknown model 'nope'" in error_fields(response)["model"][0]


def test_get_plans_runs_a_fixed_number_of_queries(status_model, ecommerce_model, reader, django_assert_max_num_queries):
    for stage_key in STATUS_STAGES:
        for channel_key in ("email", "paid_ads", "referral"):
            plan_for(status_model, stage_key, channel_key)
    # Authentication (2), the model (1), stages, channels, plans (3).
    with django_assert_max_num_queries(6):
        assert reader.get(PLANS, {"model": "status"}).status_code == 200


# --- create ---------------------------------------------------------------------------------------


def payload(**overrides) -> dict:
    body = {
        "model": "status",
        "stage": "active",
        "channel": "email",
        "objective": "Keep active customers buying",
        "strategy": "Newsletter every two weeks",
        "content": "New releases from favourite artists",
        "kpi": "repeat purchase rate (%)",
        "kpi_target": 30,
        "owner": "CRM team",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def test_post_creates_a_plan_with_an_audit_history_row(status_model, writer, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = writer.post(PLANS, payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    plan = ChannelPlan.objects.get(pk=body["id"])
    assert (plan.stage.key, plan.channel.key, plan.kpi_target, plan.owner) == (
        "active",
        "email",
        Decimal(30),
        "CRM team",
    )
    assert response["Location"].endswith(f"{PLANS}{plan.pk}/")
    assert body["kpi_target"] == 30.0 and body["active"] is True
    history = list(plan.history.all())
    assert len(history) == 1
    assert history[0].history_type == "+"
    assert history[0].history_user is None  # an API key is no user account: the reason names it
    assert history[0].history_change_reason.startswith("API, key ")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"stage": "retention"}, "stage", "is a stage of model 'ecommerce', not of 'status'"),
        ({"stage": "nope"}, "stage", "Unknown stage 'nope' in model 'status'"),
        ({"model": "nope"}, "model", "Unknown model 'nope'"),
        ({"channel": "carrier_pigeon"}, "channel", "Unknown channel 'carrier_pigeon'"),
        ({"kpi_target": "30 %"}, "kpi_target", "valid number"),
        ({"kpi_target": "lots"}, "kpi_target", "valid number"),
        ({"objective": ...}, "objective", "required"),
        ({"objective": "  "}, "objective", "blank"),
        ({"model": ...}, "model", "required"),
        ({"stage": ...}, "stage", "required"),
        ({"objectiv": "typo"}, "objectiv", "Unknown field"),
    ],
)
def test_post_refuses_bad_input_and_writes_nothing(status_model, ecommerce_model, writer, overrides, field, message):
    before = snapshot()
    response = writer.post(PLANS, payload(**overrides), format="json")
    assert response.status_code == 400
    errors = error_fields(response)
    assert field in errors, errors
    assert message in errors[field][0]
    assert snapshot() == before


def test_post_for_a_cell_with_a_plan_points_to_patch(status_model, writer):
    existing = plan_for(status_model, "active", "email")
    before = snapshot()
    response = writer.post(PLANS, payload(), format="json")
    assert response.status_code == 400
    message = error_fields(response)["channel"][0]
    assert f"already has a plan (id {existing.pk})" in message
    assert f"PATCH {PLANS}{existing.pk}/" in message
    assert snapshot() == before


def test_post_for_an_inactive_channel_is_refused(status_model, writer):
    Channel.objects.filter(key="email").update(active=False)
    response = writer.post(PLANS, payload(), format="json")
    assert response.status_code == 400
    assert "inactive" in error_fields(response)["channel"][0]
    assert not ChannelPlan.objects.exists()


# --- partial update -------------------------------------------------------------------------------


def patch(client, plan: ChannelPlan, body: dict):
    return client.patch(f"{PLANS}{plan.pk}/", body, format="json")


def test_patch_changes_only_the_given_fields_and_records_the_change(
    status_model, writer, django_assert_max_num_queries
):
    plan = plan_for(status_model, "active", "email", kpi="repeat purchase rate (%)", kpi_target=30, owner="CRM")
    with django_assert_max_num_queries(8):
        response = patch(writer, plan, {"kpi_target": "32.5", "owner": "CRM team"})
    assert response.status_code == 200, response.json()
    plan.refresh_from_db()
    assert (plan.kpi, plan.kpi_target, plan.owner) == ("repeat purchase rate (%)", Decimal("32.5"), "CRM team")
    assert response.json()["kpi_target"] == 32.5
    latest = plan.history.first()
    assert latest.history_type == "~"
    assert latest.history_change_reason.startswith("API, key ")
    assert latest.prev_record.kpi_target == Decimal(30)
    assert plan.history.count() == 2


def test_patch_without_a_change_writes_no_history(status_model, writer):
    plan = plan_for(status_model, "active", "email", owner="CRM team")
    response = patch(writer, plan, {"owner": "CRM team"})
    assert response.status_code == 200
    assert plan.history.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kpi_target": "thirty"}, "kpi_target"),
        ({"objective": ""}, "objective"),
        ({"stage": "new"}, "stage"),
        ({"channel": "paid_ads"}, "channel"),
        ({"model": "ecommerce"}, "model"),
        ({"active": "perhaps"}, "active"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_patch_refuses_bad_input_and_changes_nothing(status_model, writer, body, field):
    plan = plan_for(status_model, "active", "email", kpi_target=30)
    before = snapshot()
    response = patch(writer, plan, body)
    assert response.status_code == 400
    assert field in error_fields(response)
    assert snapshot() == before


def test_patch_of_an_unknown_plan_is_404(status_model, writer):
    response = writer.patch(f"{PLANS}999999/", {"owner": "x"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No channel plan with id 999999.", "code": "not_found", "errors": []}


# --- permissions ----------------------------------------------------------------------------------


def test_a_read_key_can_read_but_not_create_or_change_plans(status_model, reader):
    plan = plan_for(status_model, "active", "email")
    before = snapshot()
    assert reader.get(PLANS).status_code == 200
    assert reader.post(PLANS, payload(stage="new"), format="json").status_code == 403
    assert patch(reader, plan, {"owner": "someone"}).status_code == 403
    assert snapshot() == before


def test_anonymous_requests_are_refused(status_model, api_client):
    assert api_client.get(PLANS).status_code in (401, 403)
    assert api_client.post(PLANS, payload(), format="json").status_code in (401, 403)


# --- services -------------------------------------------------------------------------------------


def test_upsert_refuses_a_stage_of_another_model(status_model, ecommerce_model):
    with pytest.raises(ValidationError) as error:
        channel_plan_upsert(
            stage=stage(ecommerce_model, "retention"), channel=channel("email"), model=status_model, objective="x"
        )
    assert "belongs to model 'ecommerce', not 'status'" in error.value.message_dict["stage"][0]
    assert not ChannelPlan.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"objective": "x", "kpi_target": "30 %"}, "kpi_target"),
        ({"objective": "x", "kpi_target": True}, "kpi_target"),
        ({"objective": "x", "kpi_target": float("nan")}, "kpi_target"),
        ({"objective": "x", "kpi_target": 123456789}, "kpi_target"),
        ({"strategy": "no objective"}, "objective"),
        ({"objective": ""}, "objective"),
        ({"objective": "x", "budget": 5}, "budget"),
        ({"objective": "x" * 301}, "objective"),
    ],
)
def test_upsert_validates_the_fields(status_model, fields, field):
    with pytest.raises(ValidationError) as error:
        channel_plan_upsert(stage=stage(status_model, "new"), channel=channel("email"), model=status_model, **fields)
    assert field in error.value.message_dict
    assert not ChannelPlan.objects.exists()


def test_upsert_creates_then_updates_the_same_cell(status_model):
    cell = {"stage": stage(status_model, "new"), "channel": channel("email"), "model": status_model}
    created = channel_plan_upsert(**cell, objective="Second order", kpi_target="25")
    updated = channel_plan_upsert(**cell, kpi_target=27.5)
    assert updated.pk == created.pk
    assert (updated.objective, updated.kpi_target) == ("Second order", Decimal("27.5"))
    assert ChannelPlan.objects.count() == 1
    assert [h.history_type for h in updated.history.order_by("history_id")] == ["+", "~"]


def test_create_refuses_a_second_plan_for_the_cell(status_model):
    first = plan_for(status_model, "new", "email")
    with pytest.raises(ChannelPlanExists) as error:
        plan_for(status_model, "new", "email")
    assert error.value.plan == first


def test_the_history_names_a_logged_in_user(status_model):
    user = get_user_model().objects.create_user(username="maria", password="x")  # noqa: S106
    plan = plan_for(status_model, "new", "email")
    channel_plan_update(plan=plan, user=user, reason="raised the target", kpi_target=35)
    latest = plan.history.first()
    assert (latest.history_user, latest.history_change_reason) == (user, "raised the target")
