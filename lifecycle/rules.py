"""Stage rules: validation of rule data and compilation of a model into one SQL CASE expression.

A condition is {"feature": name, "operator": op, "value": v}. Rules are data: only registered features
and the operators below exist; values are checked against the feature's type and passed to SQL as
parameters, never evaluated. A feature that is NULL for a customer (e.g. days since last order without
any order) matches no condition, whatever the operator.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import Combinable
from django.utils.translation import gettext as _

from lifecycle.features import FEATURES, Feature, FeatureType
from lifecycle.models import Customer, LifecycleModel, Stage, StageRule

COMPARISONS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
OPERATORS = [*COMPARISONS, "!=", "between", "in"]
MAX_IN_VALUES = 100


class RuleError(ValueError):
    """Invalid rule data; `errors` lists (path, message) pairs, e.g. ("conditions[1].value", "…")."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))


@dataclass(frozen=True)
class Condition:
    feature: Feature
    operator: str
    value: Any  # a number, or a (low, high) pair for between, or a tuple for in


def _number(feature: Feature, raw: Any) -> int | Decimal:
    if isinstance(raw, bool):
        raise ValueError(_("must be a number, not true/false"))
    if feature.type in (FeatureType.INTEGER, FeatureType.DAYS_SINCE):
        if isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer()):
            return int(raw)
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
        raise ValueError(_("must be a whole number for %(feature)s") % {"feature": feature.name})
    try:
        number = Decimal(str(raw)) if isinstance(raw, int | float | str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(_("must be a number for %(feature)s") % {"feature": feature.name})
    return number


def condition_parse(data: Any, path: str = "condition") -> Condition:
    """Check one condition's data and return it typed; raises RuleError naming the field."""
    if not isinstance(data, dict):
        raise RuleError([(path, _("must be an object with feature, operator and value"))])
    errors: list[tuple[str, str]] = []
    unknown_keys = set(data) - {"feature", "operator", "value"}
    if unknown_keys:
        errors.append((path, _("unknown field(s): %(fields)s") % {"fields": ", ".join(sorted(unknown_keys))}))
    feature = FEATURES.get(data.get("feature"))  # type: ignore[arg-type]
    if feature is None:
        message = _("unknown feature %(feature)r; known: %(known)s")
        errors.append((f"{path}.feature", message % {"feature": data.get("feature"), "known": ", ".join(FEATURES)}))
    operator = data.get("operator")
    if operator not in OPERATORS:
        message = _("unknown operator %(operator)r; use one of %(known)s")
        errors.append((f"{path}.operator", message % {"operator": operator, "known": " ".join(OPERATORS)}))
    # errors is not empty whenever the feature or the operator is unknown; the two checks narrow their types.
    if errors or feature is None or not isinstance(operator, str):
        raise RuleError(errors)
    raw = data.get("value")
    try:
        if operator == "between":
            if not isinstance(raw, list | tuple) or len(raw) != 2:
                raise ValueError(_("between needs a list of two numbers [low, high]"))
            low, high = _number(feature, raw[0]), _number(feature, raw[1])
            if low > high:
                raise ValueError(_("between needs low ≤ high; got [%(low)s, %(high)s]") % {"low": low, "high": high})
            value: Any = (low, high)
        elif operator == "in":
            if not isinstance(raw, list | tuple) or not raw or len(raw) > MAX_IN_VALUES:
                raise ValueError(_("in needs a list of 1 to %(limit)s numbers") % {"limit": MAX_IN_VALUES})
            value = tuple(_number(feature, item) for item in raw)
        else:
            value = _number(feature, raw)
        if feature.type == FeatureType.DAYS_SINCE and any(
            v < 0 for v in (value if isinstance(value, tuple) else (value,))
        ):
            raise ValueError(_("days cannot be negative"))
    except ValueError as exc:
        raise RuleError([(f"{path}.value", str(exc))]) from None
    return Condition(feature, operator, value)


def conditions_parse(conditions: Any) -> list[Condition]:
    """Check a rule's conditions (AND); every error is collected before raising."""
    if not isinstance(conditions, list) or not conditions:
        raise RuleError([("conditions", _("a rule needs a list of at least one condition"))])
    parsed, errors = [], []
    for index, data in enumerate(conditions):
        try:
            parsed.append(condition_parse(data, f"conditions[{index}]"))
        except RuleError as exc:
            errors += exc.errors
    if errors:
        raise RuleError(errors)
    return parsed


def _days_q(alias: str, operator: str, days: int, as_of: datetime) -> Q:
    """`whole days since ts  <op>  days`, as a comparison of ts with as_of (ts is NULL → no match)."""

    def older_than(n: int) -> Q:  # whole days since ts >= n
        return Q(**{f"{alias}__lte": as_of - timedelta(days=n)})

    return {
        ">": older_than(days + 1),
        ">=": older_than(days),
        "<": Q(**{f"{alias}__gt": as_of - timedelta(days=days)}),
        "<=": Q(**{f"{alias}__gt": as_of - timedelta(days=days + 1)}),
        "=": older_than(days) & Q(**{f"{alias}__gt": as_of - timedelta(days=days + 1)}),
    }[operator]


def _comparison_q(condition: Condition, operator: str, value: Any, as_of: datetime) -> Q:
    alias = condition.feature.alias
    if condition.feature.type == FeatureType.DAYS_SINCE:
        return _days_q(alias, operator, value, as_of)
    return Q(**{f"{alias}__{COMPARISONS[operator]}": value})


def condition_q(condition: Condition, as_of: datetime) -> Q:
    alias, op, value = condition.feature.alias, condition.operator, condition.value
    not_null = Q(**{f"{alias}__isnull": False})
    if op == "between":
        return _comparison_q(condition, ">=", value[0], as_of) & _comparison_q(condition, "<=", value[1], as_of)
    if op == "in":
        q = Q()
        for item in value:
            q |= _comparison_q(condition, "=", item, as_of)
        return q
    if op == "!=":
        return not_null & ~_comparison_q(condition, "=", value, as_of)
    return _comparison_q(condition, op, value, as_of)


@dataclass(frozen=True)
class CompiledModel:
    annotations: dict[str, Combinable]
    stage_expression: Case


@dataclass(frozen=True)
class StoredRules:
    """A model's stages in evaluation order and their stored rules (stage id → condition lists), read together, so
    that a run's fingerprint and its compiled statement come from the same rules."""

    stages: list[Stage]
    by_stage: dict[int, list[list[dict]]]


def stored_rules(model: LifecycleModel) -> StoredRules:
    """Read the model's stages and rules, in two queries (plain rows: an event run reads them on every ingestion)."""
    stages = list(model.stages.order_by("priority", "pk"))
    by_stage: dict[int, list[list[dict]]] = {stage.pk: [] for stage in stages}
    for stage_id, conditions in StageRule.objects.filter(stage__model=model).values_list("stage_id", "conditions"):
        by_stage[stage_id].append(conditions)
    return StoredRules(stages, by_stage)


def model_conditions(model: LifecycleModel) -> list[Condition]:
    """Every condition of the model's stored rules, parsed (invalid rules raise RuleError)."""
    stored = stored_rules(model)
    _validate(model, stored.stages, stored.by_stage)
    return [
        condition
        for stage in stored.stages
        for conditions in stored.by_stage[stage.pk]
        for condition in conditions_parse(conditions)
    ]


def model_fingerprint(model: LifecycleModel, stored: StoredRules | None = None) -> str:
    """A digest of what decides the model's stages: two runs with the same fingerprint applied the same rules."""
    stored = stored or stored_rules(model)
    decisive = {
        "fallback": model.fallback_stage_id,
        "stages": [[stage.pk, stage.priority, stored.by_stage[stage.pk]] for stage in stored.stages],
    }
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()


def model_validate(model: LifecycleModel, rules_by_stage: dict[int, list[list[dict]]] | None = None) -> None:
    """A model can classify: it has a fallback among its stages and every rule is valid."""
    stored = stored_rules(model)
    _validate(model, stored.stages, rules_by_stage if rules_by_stage is not None else stored.by_stage)


def _validate(model: LifecycleModel, stages: list[Stage], rules: dict[int, list[list[dict]]]) -> None:
    errors: list[tuple[str, str]] = []
    if model.fallback_stage_id is None or model.fallback_stage_id not in {s.pk for s in stages}:
        message = _("model %(model)r needs a fallback stage among its own stages") % {"model": model.key}
        errors.append(("fallback_stage", message))
    for stage in stages:
        for index, conditions in enumerate(rules.get(stage.pk, [])):
            try:
                conditions_parse(conditions)
            except RuleError as exc:
                errors += [(f"{stage.key}.rules[{index}].{path}", message) for path, message in exc.errors]
    if errors:
        raise RuleError(errors)


def model_compile(
    model: LifecycleModel,
    as_of: datetime,
    rules_by_stage: dict[int, list[list[dict]]] | None = None,
    stored: StoredRules | None = None,
) -> CompiledModel:
    """The model's rules as one CASE expression yielding a stage id, plus the feature annotations it needs.

    `rules_by_stage` (stage id → list of condition lists) replaces the stored rules, for previews; `stored` is the
    model's rules read already.
    """
    stored = stored or stored_rules(model)
    rules = rules_by_stage if rules_by_stage is not None else stored.by_stage
    _validate(model, stored.stages, rules)
    whens, used = [], {}
    for stage in stored.stages:
        matches = Q()
        any_rule = False
        for conditions in rules.get(stage.pk, []):
            rule_q = Q()
            for condition in conditions_parse(conditions):
                used[condition.feature.name] = condition.feature
                rule_q &= condition_q(condition, as_of)
            matches |= rule_q
            any_rule = True
        if any_rule:
            whens.append(When(matches, then=Value(stage.pk)))
    annotations = {feature.alias: feature.expression(as_of) for feature in used.values()}
    case = Case(*whens, default=Value(model.fallback_stage_id), output_field=IntegerField())
    return CompiledModel(annotations, case)


def classification_queryset(
    model: LifecycleModel,
    as_of: datetime,
    rules_by_stage: dict[int, list[list[dict]]] | None = None,
    stored: StoredRules | None = None,
) -> QuerySet:
    """Customers who exist as of `as_of`, each annotated with `target_stage_id`."""
    compiled = model_compile(model, as_of, rules_by_stage, stored)
    return (
        Customer.objects.filter(first_seen_at__lte=as_of)
        .annotate(**compiled.annotations)
        .annotate(target_stage_id=compiled.stage_expression)
        .order_by()
    )
