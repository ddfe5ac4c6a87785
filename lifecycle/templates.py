"""The lifecycle model templates shipped with CLM (SPEC §3), in English and German.

Stages are listed in evaluation order (top to bottom = priority 1, 2, …); the last one is the fallback.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from lifecycle.models import LifecycleModel, Stage, StageKind, StageRule


def c(feature: str, operator: str, value: Any) -> dict[str, Any]:
    return {"feature": feature, "operator": operator, "value": value}


@dataclass(frozen=True)
class StageTemplate:
    key: str
    name_en: str
    name_de: str
    kind: str
    position: int
    colour: str
    description: str
    rules: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelTemplate:
    key: str
    name_en: str
    name_de: str
    description: str
    stages: list[StageTemplate]


FUNNEL, EXIT = StageKind.FUNNEL, StageKind.EXIT

TEMPLATES: dict[str, ModelTemplate] = {
    t.key: t
    for t in [
        ModelTemplate(
            "status",
            "Customer status",
            "Kundenstatus",
            "The five-phase customer status model: prospect → new → active → inactive → former customer.",
            [
                StageTemplate(
                    "former",
                    "Former customer",
                    "Ehemaliger Kunde",
                    EXIT,
                    5,
                    "#868e96",
                    "Bought before, nothing for more than a year.",
                    [[c("order_count", ">=", 1), c("days_since_last_order", ">", 365)]],
                ),
                StageTemplate(
                    "inactive",
                    "Inactive customer",
                    "Inaktiver Kunde",
                    EXIT,
                    4,
                    "#f08c00",
                    "Bought before, nothing for more than 180 days.",
                    [[c("order_count", ">=", 1), c("days_since_last_order", ">", 180)]],
                ),
                StageTemplate(
                    "active",
                    "Active customer",
                    "Aktiver Kunde",
                    FUNNEL,
                    3,
                    "#2b8a3e",
                    "Two or more orders, the last within 180 days.",
                    [[c("order_count", ">=", 2)]],
                ),
                StageTemplate(
                    "new",
                    "New customer",
                    "Neukunde",
                    FUNNEL,
                    2,
                    "#1c7ed6",
                    "Exactly one order, within 180 days.",
                    [[c("order_count", "=", 1)]],
                ),
                StageTemplate(
                    "prospect", "Prospect", "Interessent", FUNNEL, 1, "#adb5bd", "Known to the shop, no order yet."
                ),
            ],
        ),
        ModelTemplate(
            "ecommerce",
            "E-commerce lifecycle",
            "E-Commerce-Lebenszyklus",
            "Reach → acquire/convert → develop & nurture → retention → advocacy.",
            [
                StageTemplate(
                    "advocacy",
                    "Advocacy",
                    "Weiterempfehlung",
                    FUNNEL,
                    5,
                    "#ae3ec9",
                    "Customers who brought in a friend.",
                    [[c("order_count", ">=", 1), c("referral_count", ">=", 1)]],
                ),
                StageTemplate(
                    "retention",
                    "Retention",
                    "Kundenbindung",
                    FUNNEL,
                    4,
                    "#2b8a3e",
                    "Repeat customers.",
                    [[c("order_count", ">=", 2)]],
                ),
                StageTemplate(
                    "nurture",
                    "Develop & nurture",
                    "Entwickeln & pflegen",
                    FUNNEL,
                    3,
                    "#1098ad",
                    "One order and engaged since.",
                    [[c("order_count", "=", 1), c("engagements_since_last_order", ">=", 1)]],
                ),
                StageTemplate(
                    "acquire",
                    "Acquire / convert",
                    "Gewinnen / konvertieren",
                    FUNNEL,
                    2,
                    "#1c7ed6",
                    "First order placed.",
                    [[c("order_count", "=", 1)]],
                ),
                StageTemplate("reach", "Reach", "Reichweite", FUNNEL, 1, "#adb5bd", "Reached, no order yet."),
            ],
        ),
        ModelTemplate(
            "loyalty",
            "Loyalty ladder",
            "Loyalitätsleiter",
            "Awareness → consideration → purchase → retention → loyalty → advocacy.",
            [
                StageTemplate(
                    "advocacy",
                    "Advocacy",
                    "Weiterempfehlung",
                    FUNNEL,
                    6,
                    "#ae3ec9",
                    "Repeat customers who refer friends or rate the shop 9–10.",
                    [
                        [c("order_count", ">=", 2), c("referral_count", ">=", 1)],
                        [c("order_count", ">=", 2), c("last_feedback_score", ">=", 9)],
                    ],
                ),
                StageTemplate(
                    "loyalty",
                    "Loyalty",
                    "Loyalität",
                    FUNNEL,
                    5,
                    "#5f3dc4",
                    "Four or more orders in the last year.",
                    [[c("orders_last_365d", ">=", 4)]],
                ),
                StageTemplate(
                    "retention",
                    "Retention",
                    "Kundenbindung",
                    FUNNEL,
                    4,
                    "#2b8a3e",
                    "Repeat customers.",
                    [[c("order_count", ">=", 2)]],
                ),
                StageTemplate(
                    "purchase", "Purchase", "Kauf", FUNNEL, 3, "#1c7ed6", "One order.", [[c("order_count", "=", 1)]]
                ),
                StageTemplate(
                    "consideration",
                    "Consideration",
                    "Erwägung",
                    FUNNEL,
                    2,
                    "#1098ad",
                    "Engaged at least twice in the last 30 days.",
                    [[c("engagements_last_30d", ">=", 2)]],
                ),
                StageTemplate("awareness", "Awareness", "Bekanntheit", FUNNEL, 1, "#adb5bd", "Knows the shop."),
            ],
        ),
        ModelTemplate(
            "basic",
            "Basic funnel",
            "Einfacher Trichter",
            "Awareness → interest → purchase → retention.",
            [
                StageTemplate(
                    "retention",
                    "Retention",
                    "Kundenbindung",
                    FUNNEL,
                    4,
                    "#2b8a3e",
                    "Repeat customers.",
                    [[c("order_count", ">=", 2)]],
                ),
                StageTemplate(
                    "purchase", "Purchase", "Kauf", FUNNEL, 3, "#1c7ed6", "One order.", [[c("order_count", "=", 1)]]
                ),
                StageTemplate(
                    "interest",
                    "Interest",
                    "Interesse",
                    FUNNEL,
                    2,
                    "#1098ad",
                    "Engaged in the last 30 days.",
                    [[c("engagements_last_30d", ">=", 1)]],
                ),
                StageTemplate("awareness", "Awareness", "Bekanntheit", FUNNEL, 1, "#adb5bd", "Knows the shop."),
            ],
        ),
    ]
}


@transaction.atomic
def template_install(*, key: str, reset: bool = False, make_default: bool = False) -> tuple[LifecycleModel, bool]:
    """Install a template; returns (model, changed). Installing again changes nothing unless `reset`,
    which restores the template's stages and rules over an admin's edits."""
    template = TEMPLATES[key]
    model = LifecycleModel.objects.filter(key=key).first()
    if model is not None and not reset:
        return model, False
    if model is None:
        model = LifecycleModel.objects.create(
            key=key, name_en=template.name_en, name_de=template.name_de, description=template.description
        )
    else:
        model.name_en, model.name_de, model.description = template.name_en, template.name_de, template.description
    keys = [stage.key for stage in template.stages]
    stages = {}
    for priority, stage_template in enumerate(template.stages, start=1):
        stage, _ = Stage.objects.update_or_create(
            model=model,
            key=stage_template.key,
            defaults={
                "name_en": stage_template.name_en,
                "name_de": stage_template.name_de,
                "description": stage_template.description,
                "kind": stage_template.kind,
                "position": stage_template.position,
                "colour": stage_template.colour,
                "priority": priority,
            },
        )
        StageRule.objects.filter(stage=stage).delete()
        StageRule.objects.bulk_create(
            [StageRule(stage=stage, conditions=rule, position=i) for i, rule in enumerate(stage_template.rules, 1)]
        )
        stages[stage.key] = stage
    model.fallback_stage = stages[keys[-1]]
    if make_default and not LifecycleModel.objects.filter(is_default=True).exclude(pk=model.pk).exists():
        model.is_default = True
    model.save()
    return model, True
