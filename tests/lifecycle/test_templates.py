from io import StringIO

import pytest
from django.core.management import call_command

from lifecycle.models import LifecycleModel, StageRule
from lifecycle.rules import conditions_parse
from lifecycle.templates import TEMPLATES, template_install

pytestmark = pytest.mark.django_db


def rules_of(key: str) -> dict[str, list[list[dict]]]:
    model = LifecycleModel.objects.get(key=key)
    return {s.key: [r.conditions for r in s.rules.all()] for s in model.stages.order_by("priority")}


def test_status_is_installed_and_default_after_migrate():
    model = LifecycleModel.objects.get(is_default=True)
    assert model.key == "status" and model.fallback_stage.key == "prospect"
    assert [(s.key, s.kind, s.position) for s in model.stages.order_by("priority")] == [
        ("former", "exit", 5),
        ("inactive", "exit", 4),
        ("active", "funnel", 3),
        ("new", "funnel", 2),
        ("prospect", "funnel", 1),
    ]
    assert rules_of("status") == {
        "former": [
            [
                {"feature": "order_count", "operator": ">=", "value": 1},
                {"feature": "days_since_last_order", "operator": ">", "value": 365},
            ]
        ],
        "inactive": [
            [
                {"feature": "order_count", "operator": ">=", "value": 1},
                {"feature": "days_since_last_order", "operator": ">", "value": 180},
            ]
        ],
        "active": [[{"feature": "order_count", "operator": ">=", "value": 2}]],
        "new": [[{"feature": "order_count", "operator": "=", "value": 1}]],
        "prospect": [],
    }


def test_loyalty_advocacy_has_two_rules_joined_by_or():
    template_install(key="loyalty")
    assert rules_of("loyalty")["advocacy"] == [
        [
            {"feature": "order_count", "operator": ">=", "value": 2},
            {"feature": "referral_count", "operator": ">=", "value": 1},
        ],
        [
            {"feature": "order_count", "operator": ">=", "value": 2},
            {"feature": "last_feedback_score", "operator": ">=", "value": 9},
        ],
    ]


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_installs_with_valid_rules_names_in_two_languages_and_a_fallback(key):
    model, _ = template_install(key=key)
    assert model.fallback_stage.key == TEMPLATES[key].stages[-1].key
    assert model.name_de and all(s.name_de and s.name_en for s in model.stages.all())
    for rule in StageRule.objects.filter(stage__model=model):
        conditions_parse(rule.conditions)


def test_load_template_is_idempotent_and_reset_restores_edits():
    out = StringIO()
    call_command("load_template", "ecommerce", stdout=out)
    assert "installed; 5 stages" in out.getvalue()
    rule = StageRule.objects.get(stage__model__key="ecommerce", stage__key="retention")
    rule.conditions = [{"feature": "order_count", "operator": ">=", "value": 3}]
    rule.save()
    call_command("load_template", "ecommerce", stdout=(again := StringIO()))
    assert "already installed" in again.getvalue()
    assert StageRule.objects.get(pk=rule.pk).conditions[0]["value"] == 3
    call_command("load_template", "ecommerce", "--reset", stdout=StringIO())
    assert rules_of("ecommerce")["retention"] == [[{"feature": "order_count", "operator": ">=", "value": 2}]]
    assert LifecycleModel.objects.filter(key="ecommerce").count() == 1
