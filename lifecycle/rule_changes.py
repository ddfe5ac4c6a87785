"""Changing what decides where customers land (SPEC §3): rules, stages and lifecycle models.

The workflow the rule editor in the admin runs, kept here so that the editors of other rule sets (segments, plays)
reuse it rather than copy it:

1. Preview (`rule_change_preview`): how many customers would move from which stage to which under the proposed
   rules (lifecycle.preview, one read-only aggregate), nothing written. The preview carries the version of the
   saved rules it was computed against (`rules_version`).
2. Save (`rule_save`): refused with RulesChangedSincePreview, writing nothing, when the saved rules are no longer
   those of the preview the user confirmed (optimistic concurrency: nobody confirms an impact they were not shown).
3. Audit: every save and delete records its user and reason in the object's history (django-simple-history).
4. Apply: a full `rule_change` run of the model is queued once the change is committed (`model_run_queue`);
   stage and model edits queue one only when they alter the classification (`classification_signature`).

Deleting a stage or a model that customers are in (or have been in) is refused with the reasons.
"""

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from clm.base.history import audit_as
from lifecycle.forms import stage_delete_blockers
from lifecycle.models import CustomerStage, LifecycleModel, RunKind, Stage, StageRule, StageTransition
from lifecycle.preview import RulePreview, RulesByStage, rules_by_stage_stored, rules_preview
from lifecycle.tasks import reclassify_model
from lifecycle.templates import template_install

logger = logging.getLogger(__name__)

Conditions = list[dict[str, Any]]
# Everything that decides where a model's customers land (see classification_signature); () for no model.
ClassificationSignature = tuple[Any, ...]
# Called (after the commit) with the model whose run the broker did not take, e.g. to tell the user.
QueueFailure = Callable[[LifecycleModel], None]


class RulesChangedSincePreview(ValidationError):
    """The saved rules changed since the preview that was confirmed: preview again."""

    def __init__(self) -> None:
        super().__init__(
            _("The model's rules were changed by someone else since this preview: check again."), code="stale_rules"
        )


# --- applying a change: the classification run --------------------------------------------------------------


def model_run_queue(*, model: LifecycleModel, kind: RunKind, on_queue_failure: QueueFailure | None = None) -> bool:
    """Queue a full run of the model over all customers once the current transaction commits.

    Returns False, queueing nothing, for an inactive model (it classifies nobody). If the broker cannot take the
    run, the change stays saved and the next periodic pass applies it: the failure is logged and `on_queue_failure`
    called with the model.
    """
    if not model.active:
        return False
    model_id = model.pk

    def enqueue() -> None:
        try:
            reclassify_model.delay(model_id, kind)
        except Exception:
            logger.exception("could not queue the %s run of model %s", kind, model_id)
            if on_queue_failure is not None:
                on_queue_failure(model)

    transaction.on_commit(enqueue)
    return True


def classification_signature(*, model_id: int | None) -> ClassificationSignature:
    """Everything that decides where a model's customers land: whether it is active, its fallback, its stages'
    evaluation order and their rules. Take it before an edit and give it to classification_changed_run_queue."""
    if model_id is None:
        return ()
    return (
        LifecycleModel.objects.filter(pk=model_id).values_list("active", "fallback_stage_id").first(),
        list(Stage.objects.filter(model_id=model_id).order_by("pk").values_list("pk", "priority")),
        list(
            StageRule.objects.filter(stage__model_id=model_id)
            .order_by("stage", "position", "pk")
            .values_list("stage_id", "conditions")
        ),
    )


def classification_changed_run_queue(
    *, model: LifecycleModel, before: ClassificationSignature | None, on_queue_failure: QueueFailure | None = None
) -> RunKind | None:
    """After an edit of a model or its stages: queue a `rule_change` run if the edit changed the classification
    (`before` is the classification_signature taken before it), or a first `full` run of a new model (`before`
    None). Returns the kind of run queued, None when none is."""
    if before is None:
        kind = RunKind.FULL  # a new model: classify everyone a first time
    elif before != classification_signature(model_id=model.pk):
        kind = RunKind.RULE_CHANGE
    else:
        return None
    return kind if model_run_queue(model=model, kind=kind, on_queue_failure=on_queue_failure) else None


# --- rules: preview, version, save, delete --------------------------------------------------------------------


def rules_version(*, rules: RulesByStage) -> str:
    """A fingerprint of a model's saved rules ({stage id: [conditions, …]}, as rules_by_stage_stored gives them)."""
    return hashlib.sha256(json.dumps(sorted(rules.items()), sort_keys=True).encode()).hexdigest()[:16]


def stage_rules_with(
    *, stage_id: int, without: int | None = None, new: tuple[int, Conditions] | None = None
) -> list[Conditions]:
    """A stage's rules (condition lists, in order) with one rule left out and/or a new version put in at its
    position (after the saved rules of the same position)."""
    saved = StageRule.objects.filter(stage_id=stage_id)
    if without is not None:
        saved = saved.exclude(pk=without)
    rows: list[tuple[int, float, Conditions]] = [
        (position, pk, conditions) for pk, position, conditions in saved.values_list("pk", "position", "conditions")
    ]
    if new is not None:
        rows.append((new[0], math.inf, new[1]))
    return [conditions for _, _, conditions in sorted(rows, key=lambda row: (row[0], row[1]))]


def rule_unchanged(*, rule: StageRule | None, position: int, conditions: Conditions) -> bool:
    """Whether saving would change nothing: an existing rule whose saved position and conditions are these."""
    if rule is None:
        return False
    saved = StageRule.objects.filter(pk=rule.pk).values_list("position", "conditions").first()
    return saved is not None and (position, conditions) == tuple(saved)


@dataclass(frozen=True)
class RuleChange:
    """A proposed rule (new, or a new version of `rule`) and its preview, before anything is saved."""

    rule: StageRule | None
    stage: Stage
    position: int
    conditions: Conditions
    stored: RulesByStage  # the model's saved rules
    proposed: RulesByStage  # the same with this change
    preview: RulePreview
    version: str  # rules_version of `stored`: what the user confirms

    @property
    def model(self) -> LifecycleModel:
        return self.stage.model


def rule_change_preview(
    *, stage: Stage, position: int, conditions: Conditions, rule: StageRule | None = None
) -> RuleChange:
    """Who would move where if the rule (`rule`, or a new one of `stage`) had these position and conditions.

    Writes nothing. Raises lifecycle.rules.RuleError when the model as a whole could not classify with it
    (e.g. it has no fallback stage).
    """
    model = stage.model
    stored = rules_by_stage_stored(model=model)
    new = (position, conditions)
    proposed = {**stored, stage.pk: stage_rules_with(stage_id=stage.pk, without=rule.pk if rule else None, new=new)}
    return RuleChange(
        rule=rule,
        stage=stage,
        position=position,
        conditions=conditions,
        stored=stored,
        proposed=proposed,
        preview=rules_preview(model=model, rules_by_stage=proposed),
        version=rules_version(rules=stored),
    )


def _rule_history_start(*, rule_pk: int) -> None:
    """Rules created in bulk (template_install) have no history record yet: record their saved state before
    the first audited change (by nobody in particular), so that the change shows its before → after."""
    if StageRule.history.filter(id=rule_pk).exists():
        return
    historical = StageRule.history.model
    for rule in StageRule.objects.filter(pk=rule_pk):
        historical.objects.create(
            **{field.attname: getattr(rule, field.attname) for field in StageRule._meta.concrete_fields},
            history_date=timezone.now(),
            history_type="+",
            history_change_reason="saved state before the first audited change",
            history_user=None,
        )


def rule_save(
    *, change: RuleChange, expected_version: str, user: Any, on_queue_failure: QueueFailure | None = None
) -> StageRule:
    """Save a previewed rule change as `user`, with the number of customers it moves as the history's reason, and
    queue a `rule_change` run of the model once committed. Returns the saved rule.

    `expected_version` is the version of the preview the user confirmed. Raises RulesChangedSincePreview, writing
    and queueing nothing, unless it is still the version of the saved rules.
    """
    model = change.model
    with transaction.atomic():
        # Concurrent saves of one model's rules wait for each other here, so the second sees the first's change.
        list(LifecycleModel.objects.select_for_update().filter(pk=model.pk).values_list("pk", flat=True))
        saved_now = rules_version(rules=rules_by_stage_stored(model=model))
        if expected_version != change.version or saved_now != change.version:
            raise RulesChangedSincePreview
        if change.rule is not None:
            _rule_history_start(rule_pk=change.rule.pk)
        rule = change.rule if change.rule is not None else StageRule()
        rule.stage, rule.position, rule.conditions = change.stage, change.position, change.conditions
        moving = change.preview.moving
        audit_as(rule, actor=user, reason=f"rule change confirmed after preview: {moving} customers to move")
        rule.save()
        model_run_queue(model=model, kind=RunKind.RULE_CHANGE, on_queue_failure=on_queue_failure)
    return rule


def rule_delete_preview(*, rule: StageRule) -> RulePreview:
    """Who would move where if the rule were deleted; writes nothing. Raises lifecycle.rules.RuleError when the
    model could not classify without it."""
    model = rule.stage.model
    proposed = {
        **rules_by_stage_stored(model=model),
        rule.stage_id: stage_rules_with(stage_id=rule.stage_id, without=rule.pk),
    }
    return rules_preview(model=model, rules_by_stage=proposed)


def rule_delete(*, rule: StageRule, user: Any, on_queue_failure: QueueFailure | None = None) -> None:
    """Delete a rule as `user` (its history keeps it) and queue a `rule_change` run of the model once committed."""
    model = rule.stage.model
    with transaction.atomic():
        _rule_history_start(rule_pk=rule.pk)
        audit_as(rule, actor=user, reason="rule deleted")
        rule.delete()
        model_run_queue(model=model, kind=RunKind.RULE_CHANGE, on_queue_failure=on_queue_failure)


# --- stages and models ---------------------------------------------------------------------------------------


def stage_delete(*, stage: Stage, user: Any, on_queue_failure: QueueFailure | None = None) -> None:
    """Delete a stage as `user` and queue a `rule_change` run of its model once committed.

    Raises ValidationError with the reasons, deleting nothing, for a stage that is its model's fallback or that
    customers are or have been in (lifecycle.forms.stage_delete_blockers).
    """
    reasons = stage_delete_blockers(stage)
    if reasons:
        raise ValidationError(reasons)
    model = stage.model
    with transaction.atomic():
        audit_as(stage, actor=user)
        stage.delete()
        model_run_queue(model=model, kind=RunKind.RULE_CHANGE, on_queue_failure=on_queue_failure)


def model_delete_blockers(*, model: LifecycleModel) -> list[str]:
    """Why a lifecycle model cannot be deleted (empty: it can): it keeps its customers' stage history."""
    customers = CustomerStage.objects.filter(model=model).count()
    if not customers and not StageTransition.objects.filter(model=model).exists():
        return []
    return [
        _(
            "Model “%(model)s” has classified %(count)s customers and keeps their stage history; "
            "untick “active” to stop it classifying instead."
        )
        % {"model": model, "count": number_format(customers, force_grouping=True)}
    ]


def model_delete(*, model: LifecycleModel, user: Any) -> None:
    """Delete an unused lifecycle model with its stages and rules, as `user`.

    Raises ValidationError with the reasons (model_delete_blockers), deleting nothing, for a model in use.
    """
    reasons = model_delete_blockers(model=model)
    if reasons:
        raise ValidationError(reasons)
    with transaction.atomic():
        # The model's own link to its fallback stage would protect that stage from the cascade.
        LifecycleModel.objects.filter(pk=model.pk).update(fallback_stage=None)
        model.fallback_stage = None
        audit_as(model, actor=user)
        model.delete()


def model_template_install(
    *, key: str, make_default: bool = False, user: Any, on_queue_failure: QueueFailure | None = None
) -> tuple[LifecycleModel, bool]:
    """Install a shipped template (lifecycle.templates) as `user`; returns (model, changed).

    Its rules get their first history record, and a first `full` run is queued once committed. Installing a
    template that is installed already changes nothing.
    """
    with transaction.atomic():
        model, changed = template_install(key=key, make_default=make_default)
        if changed:
            # template_install bulk-creates the rules, which writes no history.
            StageRule.history.bulk_history_create(
                list(StageRule.objects.filter(stage__model=model)),
                default_user=user,
                default_change_reason=f"installed template {key}",
            )
            model_run_queue(model=model, kind=RunKind.FULL, on_queue_failure=on_queue_failure)
    return model, changed
