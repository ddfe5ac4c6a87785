"""The demo's channel plans (clm.demo.plans) and how seed_demo installs and seeds them."""

from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import ChannelPlan
from clm.demo.plans import DEMO_PLANS, demo_plans_seed
from lifecycle.models import LifecycleModel, Stage
from tests.campaigns.test_plans import channel, plan_for, stage
from tests.factories import OrderFactory, at

pytestmark = pytest.mark.django_db


def test_demo_plans_cover_every_stage_of_status_and_ecommerce_and_a_second_run_writes_nothing(
    status_model, ecommerce_model
):
    first = demo_plans_seed()
    assert first.created == len(DEMO_PLANS["status"]) + len(DEMO_PLANS["ecommerce"])
    assert first.models == ["status", "ecommerce"]
    for model in (status_model, ecommerce_model):
        planned = set(ChannelPlan.objects.filter(stage__model=model).values_list("stage__key", flat=True))
        assert planned == set(Stage.objects.filter(model=model).values_list("key", flat=True))
    assert ChannelPlan.objects.filter(kpi_target__isnull=True).count() == 0
    assert ChannelPlan.objects.exclude(owner="").count() == ChannelPlan.objects.count()
    history = ChannelPlan.history.count()
    second = demo_plans_seed()
    assert (second.created, second.kept) == (0, first.created)
    assert ChannelPlan.history.count() == history


def test_demo_plans_are_what_a_retailer_would_plan(status_model, ecommerce_model):
    demo_plans_seed()

    def channels_of(model: LifecycleModel, stage_key: str) -> set[str]:
        return set(ChannelPlan.objects.filter(stage=stage(model, stage_key)).values_list("channel__key", flat=True))

    assert {"email", "app_notifications"} <= channels_of(status_model, "active")
    assert {"email", "app_notifications"} <= channels_of(ecommerce_model, "retention")
    assert "referral" in channels_of(ecommerce_model, "advocacy")
    assert {"paid_ads", "organic_search"} <= channels_of(ecommerce_model, "reach")
    assert {"paid_ads", "organic_search"} <= channels_of(status_model, "prospect")
    assert "email" in channels_of(status_model, "inactive") and "email" in channels_of(status_model, "former")
    winback = ChannelPlan.objects.get(stage=stage(status_model, "inactive"), channel=channel("email"))
    assert "win" in winback.objective.lower() and winback.owner == "CRM team"


def test_demo_plans_keep_a_marketers_edit_and_skip_models_not_installed(status_model):
    plan = plan_for(status_model, "active", "email", objective="Our own objective")
    result = demo_plans_seed()
    assert result.models == ["status"]  # ecommerce is not installed
    assert result.kept == 1
    plan.refresh_from_db()
    assert plan.objective == "Our own objective"


def test_seed_demo_installs_ecommerce_and_seeds_the_plans_once(status_model):
    for n in range(3):
        OrderFactory(placed_at=at(f"2024-0{n + 1}-10"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Installed the `ecommerce` lifecycle model" in out.getvalue()
    assert LifecycleModel.objects.filter(key="ecommerce").exists()
    created = len(DEMO_PLANS["status"]) + len(DEMO_PLANS["ecommerce"])
    assert f"Channel plans for status, ecommerce: {created} created, 0 kept" in out.getvalue()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Installed" not in out.getvalue()
    assert f"0 created, {created} kept as they were." in out.getvalue()
    assert ChannelPlan.objects.count() == created
