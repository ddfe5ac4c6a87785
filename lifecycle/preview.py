"""Rule preview (SPEC §3): what a proposed rule set would change, before anything is saved.

One read-only aggregate query: every customer who exists as of `as_of` is classified under the proposed
rules (the same compiled CASE expression the reclassification runs use, lifecycle.rules) and grouped by
(current stage in this model, target stage). Nothing is written; the query count does not depend on the
number of customers.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from clm.base.sql import grouped_counts
from lifecycle.models import CustomerStage, LifecycleModel, Stage, StageRule
from lifecycle.rules import classification_queryset

RulesByStage = dict[int, list[list[dict]]]


@dataclass(frozen=True)
class PreviewStage:
    id: int
    key: str
    name: str
    colour: str


@dataclass(frozen=True)
class RulePreview:
    """How many customers would move from which stage to which under the proposed rules.

    `matrix[from_key][to_key]` counts customers; the from key `None` stands for customers not classified
    in this model yet (a run gives them their first stage, so they count as moving).
    """

    model_id: int
    as_of: datetime
    stages: list[PreviewStage]  # the model's stages in funnel order (position)
    matrix: dict[str | None, dict[str, int]]
    before: dict[str | None, int]  # customers per current stage (None: not classified yet)
    after: dict[str, int]  # customers per stage under the proposed rules
    total: int  # customers evaluated
    moving: int  # customers whose stage would change
    moves: list[tuple[str | None, str, int]] = field(default_factory=list)  # (from, to, customers), from ≠ to

    @property
    def rows(self) -> list[dict]:
        """The matrix as table rows for templates: current stages first, then the unclassified row if any."""
        keys: list[str | None] = [stage.key for stage in self.stages]
        if self.before.get(None):
            keys.append(None)
        names = {stage.key: stage.name for stage in self.stages}
        return [
            {
                "key": key,
                "name": names.get(key, "") if key is not None else None,
                "cells": [
                    {"to": stage.key, "count": self.matrix[key][stage.key], "moves": stage.key != key}
                    for stage in self.stages
                ],
                "before": self.before.get(key, 0),
            }
            for key in keys
        ]

    @property
    def moves_named(self) -> list[dict]:
        """The moves with stage names, for people (None: not classified yet)."""
        names = {stage.key: stage.name for stage in self.stages}
        return [
            {
                "from": source,
                "from_name": names.get(source) if source else None,
                "to": target,
                "to_name": names[target],
                "customers": n,
            }
            for source, target, n in self.moves
        ]

    @property
    def totals(self) -> list[dict]:
        """Per stage: customers in it now, under the proposed rules, and the difference."""
        return [
            {
                "key": stage.key,
                "name": stage.name,
                "before": self.before.get(stage.key, 0),
                "after": self.after.get(stage.key, 0),
                "change": self.after.get(stage.key, 0) - self.before.get(stage.key, 0),
            }
            for stage in self.stages
        ]

    def as_dict(self) -> dict:
        """JSON-ready (e.g. for json_script or an API); the unclassified row's key is null."""
        return {
            "model_id": self.model_id,
            "as_of": self.as_of.isoformat(),
            "stages": [{"key": s.key, "name": s.name, "colour": s.colour} for s in self.stages],
            "moves": [{"from": f, "to": t, "customers": n} for f, t, n in self.moves],
            "before": [{"stage": key, "customers": n} for key, n in self.before.items()],
            "after": [{"stage": key, "customers": n} for key, n in self.after.items()],
            "total": self.total,
            "moving": self.moving,
        }


def rules_by_stage_stored(*, model: LifecycleModel) -> RulesByStage:
    """The model's saved rules as {stage id: [conditions, …]}: the base that a proposed change edits."""
    rules: RulesByStage = {stage_id: [] for stage_id in model.stages.values_list("pk", flat=True)}
    for stage_id, conditions in (
        StageRule.objects.filter(stage__model=model)
        .order_by("stage", "position", "pk")
        .values_list("stage_id", "conditions")
    ):
        rules[stage_id].append(conditions)
    return rules


def rules_by_stage_replace(
    *, model: LifecycleModel, stage_id: int, rules: Iterable[list[dict]], base: RulesByStage | None = None
) -> RulesByStage:
    """The model's saved rules with one stage's rules replaced (a rule added, edited or deleted)."""
    proposed = dict(base if base is not None else rules_by_stage_stored(model=model))
    proposed[stage_id] = list(rules)
    return proposed


def rules_preview(*, model: LifecycleModel, rules_by_stage: RulesByStage, as_of: datetime | None = None) -> RulePreview:
    """The from × to matrix of the proposed rules against the customers' current stages, without writing.

    `rules_by_stage` is the whole proposed rule set ({stage id: [conditions, …]}, as in
    lifecycle.rules.model_compile). Raises lifecycle.rules.RuleError when it is invalid.
    """
    as_of = as_of or timezone.now()
    current = CustomerStage.objects.filter(model=model, customer=OuterRef("pk")).values("stage_id")[:1]
    classified = (
        classification_queryset(model, as_of, rules_by_stage)
        .annotate(current_stage_id=Subquery(current))
        .values("current_stage_id", "target_stage_id")
    )
    counts = grouped_counts(classified, ["current_stage_id", "target_stage_id"])
    stages = [
        PreviewStage(id=s.pk, key=s.key, name=s.name_en, colour=s.colour)
        for s in Stage.objects.filter(model=model).order_by("position", "pk")
    ]
    key_of: dict[int | None, str | None] = {s.id: s.key for s in stages}
    key_of[None] = None
    matrix: dict[str | None, dict[str, int]] = {key: {s.key: 0 for s in stages} for key in key_of.values()}
    before: dict[str | None, int] = dict.fromkeys(key_of.values(), 0)
    after: dict[str, int] = {s.key: 0 for s in stages}
    total = moving = 0
    for current_stage_id, target_stage_id, n in counts:
        source, target = key_of[current_stage_id], key_of[target_stage_id]
        matrix[source][target] += n  # type: ignore[index]
        before[source] += n
        after[target] += n  # type: ignore[index]
        total += n
        moving += n if source != target else 0
    moves = [
        (source, target, n) for source, row in matrix.items() for target, n in row.items() if n and source != target
    ]
    return RulePreview(
        model_id=model.pk,
        as_of=as_of,
        stages=stages,
        matrix=matrix,
        before=before,
        after=after,
        total=total,
        moving=moving,
        moves=moves,
    )
