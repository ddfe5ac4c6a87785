"""Admin forms for lifecycle models, stages and rules.

A rule is edited as one row per condition (feature, operator, value), never as raw JSON. The rows are
turned into the `conditions` list and checked by lifecycle.rules.conditions_parse, the same validation the
engine and the API use; its errors are put next to the offending row and field.
"""

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from lifecycle.backfill import BackfillError, BackfillStep, backfill_moments
from lifecycle.features import FEATURES
from lifecycle.models import CustomerStage, LifecycleModel, Stage, StageRule, StageTransition
from lifecycle.rules import OPERATORS, Condition, RuleError, conditions_parse
from lifecycle.templates import TEMPLATES

OPERATOR_LABELS = {
    "=": gettext_lazy("= equals"),
    "!=": gettext_lazy("≠ is not"),
    "<": gettext_lazy("< less than"),
    "<=": gettext_lazy("≤ at most"),
    ">": gettext_lazy("> more than"),
    ">=": gettext_lazy("≥ at least"),
    "between": gettext_lazy("between low, high (inclusive)"),
    "in": gettext_lazy("in a, b, c"),
}
MAX_CONDITIONS = 20


def _choices_with(choices: Sequence[tuple[str, str | Promise]], current: Any) -> Sequence[tuple[str, str | Promise]]:
    """Keep an unknown stored/posted value selectable, so that it is shown (and reported) rather than lost."""
    if current and current not in {value for value, _ in choices}:
        return [*choices, (str(current), _("%(value)s (unknown)") % {"value": current})]
    return choices


def value_to_text(operator: str, value: Any) -> str:
    """A stored condition value as the text an admin types: `2`, `1, 5` (between), `1, 2, 3` (in)."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def value_from_text(operator: str, text: str) -> Any:
    """The typed text as rule data for conditions_parse; numbers are checked there, not here."""
    text = text.strip()
    if operator in ("between", "in"):
        separator = ".." if operator == "between" and ".." in text else ","
        parts = [part.strip() for part in text.split(separator)]
        return [part for part in parts if part] if text else []
    return text


def _json_number(value: int | Decimal) -> int | float | str:
    """Rule data is JSON: whole numbers as int, decimals as float when that is exact, else as a string."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    return value


def condition_to_data(condition: Condition) -> dict[str, Any]:
    """A checked condition as stored rule data, numbers normalised (`"2"` → 2)."""
    value = condition.value
    stored: Any = [_json_number(v) for v in value] if isinstance(value, tuple) else _json_number(value)
    return {"feature": condition.feature.name, "operator": condition.operator, "value": stored}


class ConditionForm(forms.Form):
    feature = forms.CharField(required=False, widget=forms.Select)
    operator = forms.CharField(required=False, widget=forms.Select)
    value = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 14, "placeholder": gettext_lazy("e.g. 2")}),
        help_text=gettext_lazy("between: low, high — in: a, b, c"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        features = [(name, f"{name}: {_(f.description)}") for name, f in FEATURES.items()]
        feature_choices = [("", _("— feature —")), *features]
        operator_choices = [("", _("— operator —"))] + [(op, OPERATOR_LABELS.get(op, op)) for op in OPERATORS]
        self.fields["feature"].widget.choices = _choices_with(feature_choices, self._current("feature"))
        self.fields["operator"].widget.choices = _choices_with(operator_choices, self._current("operator"))

    def _current(self, name: str) -> Any:
        return self.data.get(self.add_prefix(name)) if self.is_bound else self.initial.get(name)

    @classmethod
    def initial_from(cls, condition: dict[str, Any]) -> dict[str, str]:
        operator = str(condition.get("operator", ""))
        return {
            "feature": str(condition.get("feature", "")),
            "operator": operator,
            "value": value_to_text(operator, condition.get("value")),
        }

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not any(data.get(name) for name in ("feature", "operator", "value"))

    def condition_data(self) -> dict[str, Any]:
        operator = self.cleaned_data.get("operator", "")
        return {
            "feature": self.cleaned_data.get("feature", ""),
            "operator": operator,
            "value": value_from_text(operator, self.cleaned_data.get("value", "")),
        }


def _marked_for_deletion(formset: forms.BaseFormSet, form: forms.Form) -> bool:
    # Django's own test of a row's DELETE box, a private BaseFormSet method that django-stubs leaves out.
    return formset._should_delete_form(form)  # type: ignore[attr-defined]


class BaseConditionFormSet(forms.BaseFormSet):
    """The conditions of one rule (joined by AND); blank rows are ignored."""

    def clean(self) -> None:
        self.conditions: list[dict[str, Any]] = []
        if any(self.errors):
            return
        rows = [
            form
            for form in self.forms
            if not (self.can_delete and _marked_for_deletion(self, form)) and not form.is_blank()
        ]
        try:
            parsed = conditions_parse([form.condition_data() for form in rows])
        except RuleError as exc:
            self._report(exc.errors, rows)
            return
        self.conditions = [condition_to_data(condition) for condition in parsed]

    def _report(self, errors: Iterable[tuple[str, str]], rows: list[ConditionForm]) -> None:
        """Put each (path, message) of a RuleError next to its row and field, e.g. conditions[1].value."""
        non_form = []
        for path, message in errors:
            head, _, field = path.partition("].")
            if head.startswith("conditions[") and head[len("conditions[") :].isdigit():
                form = rows[int(head[len("conditions[") :])]
                form.add_error(field if field in form.fields else None, message)
            elif path.startswith("conditions[") and path.endswith("]"):
                rows[int(path[len("conditions[") : -1])].add_error(None, message)
            else:
                non_form.append(message)
        if non_form:
            raise ValidationError(non_form)


ConditionFormSet = forms.formset_factory(
    ConditionForm,
    formset=BaseConditionFormSet,
    extra=2,
    can_delete=True,
    max_num=MAX_CONDITIONS,
    validate_max=True,
)


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Stage) -> str:
        return f"{obj.model.name_en} › {obj.name_en} ({obj.key})"


class RuleForm(forms.ModelForm):
    """Which stage a rule belongs to and its place among the stage's rules; the conditions are a formset."""

    stage = StageChoiceField(queryset=Stage.objects.select_related("model").order_by("model__key", "priority"))

    class Meta:
        model = StageRule
        fields = ["stage", "position"]
        help_texts = {"position": gettext_lazy("Order among the stage's rules (rules of a stage are joined by OR)")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # A rule stays with its stage: moving it would change two models' rules in one step.
            self.fields["stage"].disabled = True


# --- models and stages -----------------------------------------------------------------------------


class LifecycleModelForm(forms.ModelForm):
    class Meta:
        model = LifecycleModel
        fields = ["key", "name_en", "name_de", "description", "is_default", "active"]

    def clean_is_default(self) -> bool:
        is_default = self.cleaned_data["is_default"]
        other = LifecycleModel.objects.filter(is_default=True).exclude(pk=self.instance.pk).first()
        if is_default and other is not None:
            raise ValidationError(
                _("“%(model)s” is the default model; untick “default model” there first.") % {"model": other}
            )
        return is_default


def stage_delete_blockers(stage: Stage, *, check_fallback: bool = True) -> list[str]:
    """Why a stage cannot be deleted (empty: it can).

    Customers in it now are refused with their count; a stage that appears in the transition log is kept
    because the log is append-only and funnels, flows and time in stage are computed from it.
    """
    reasons = []
    name = stage.name_en
    if check_fallback and LifecycleModel.objects.filter(fallback_stage=stage).exists():
        reasons.append(
            _("Stage “%(stage)s” is the model's fallback stage; choose another fallback first.") % {"stage": name}
        )
    customers = CustomerStage.objects.filter(stage=stage).count()
    if customers:
        reasons.append(
            ngettext(
                "Stage “%(stage)s” cannot be deleted: %(count)s customer is in it now. Change the rules so that "
                "nobody lands in it instead (customers then move on the rule-change run); the stage stays for the "
                "history.",
                "Stage “%(stage)s” cannot be deleted: %(count)s customers are in it now. Change the rules so that "
                "nobody lands in it instead (customers then move on the rule-change run); the stage stays for the "
                "history.",
                customers,
            )
            % {"stage": name, "count": number_format(customers, force_grouping=True)}
        )
    elif StageTransition.objects.filter(Q(from_stage=stage) | Q(to_stage=stage)).exists():
        reasons.append(
            _(
                "Stage “%(stage)s” cannot be deleted: customers have been in it, and the stage history "
                "(funnels, flows, time in stage) keeps it. Remove its rules to stop classifying into it."
            )
            % {"stage": name}
        )
    return reasons


class StageForm(forms.ModelForm):
    class Meta:
        model = Stage
        fields = ["key", "name_en", "name_de", "kind", "position", "priority", "colour", "description"]
        widgets = {
            "colour": forms.TextInput(attrs={"type": "color"}),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 30}),
        }

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        model_id = self.instance.model_id
        if model_id and Stage.objects.filter(model_id=model_id, key=key).exclude(pk=self.instance.pk).exists():
            raise ValidationError(
                _("This model already has a stage with the key “%(key)s”; keys must be unique.") % {"key": key}
            )
        return key


class StageInlineForm(StageForm):
    is_fallback = forms.BooleanField(
        label=gettext_lazy("fallback"),
        required=False,
        help_text=gettext_lazy("Customers who match no rule go here (exactly one stage)"),
    )


class StageInlineFormSet(BaseInlineFormSet):
    """The stages of a model: exactly one fallback, unique keys, and no deleting of stages in use."""

    def add_fields(self, form: forms.ModelForm, index: int | None) -> None:
        super().add_fields(form, index)
        if "is_fallback" in form.fields:
            parent_fallback = self.instance.fallback_stage_id if self.instance.pk else None
            form.fields["is_fallback"].initial = form.instance.pk is not None and form.instance.pk == parent_fallback

    def get_unique_error_message(self, unique_check: Iterable[str]) -> str:
        return _("Two stages use the same key; a stage key must be unique within its model.")

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.has_changed() or f.instance.pk is not None]
        kept = [f for f in kept if not _marked_for_deletion(self, f) and f.cleaned_data]
        fallbacks = [f for f in kept if f.cleaned_data.get("is_fallback")]
        errors = []
        if len(fallbacks) != 1:
            errors.append(
                _(
                    "Tick “fallback” on exactly one stage: the model needs a fallback stage among its own stages "
                    "for customers who match no rule (%(count)s ticked)."
                )
                % {"count": len(fallbacks)}
            )
        # Stages in use are refused earlier, with counts (the model admin's hand_clean_DELETE).
        for form in self.forms:
            if (
                _marked_for_deletion(self, form)
                and form.instance.pk is not None
                and form.cleaned_data.get("is_fallback")
            ):
                errors.append(
                    _("Stage “%(stage)s” is ticked as the fallback and cannot be deleted.")
                    % {"stage": form.instance.name_en}
                )
        if errors:
            raise ValidationError(errors)
        # The parent model's admin sets the fallback from the ticked row once the stages are saved.
        self.instance._fallback_form = fallbacks[0]


# --- templates -------------------------------------------------------------------------------------


class TemplateInstallForm(forms.Form):
    template = forms.ChoiceField(widget=forms.RadioSelect)
    make_default = forms.BooleanField(
        required=False, label=gettext_lazy("Make it the default model if there is none"), initial=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        installed = set(LifecycleModel.objects.filter(key__in=TEMPLATES).values_list("key", flat=True))
        # Form.fields is typed by the base Field; "template" is the ChoiceField declared above.
        cast(forms.ChoiceField, self.fields["template"]).choices = [
            (key, f"{t.name_en} ({key}): {t.description}" + (_(" — installed") if key in installed else ""))
            for key, t in TEMPLATES.items()
        ]


# --- backfill --------------------------------------------------------------------------------------


BACKFILL_STEP_LABELS = {BackfillStep.DAY: gettext_lazy("day"), BackfillStep.WEEK: gettext_lazy("week")}


class BackfillForm(forms.Form):
    start = forms.DateField(help_text=gettext_lazy("YYYY-MM-DD, first day of the history to rebuild"))
    end = forms.DateField(help_text=gettext_lazy("YYYY-MM-DD, last day (before today)"))
    step = forms.ChoiceField(choices=list(BACKFILL_STEP_LABELS.items()), initial=BackfillStep.WEEK)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not self.errors:
            try:
                backfill_moments(start=data["start"], end=data["end"], step=BackfillStep(data["step"]))
            except BackfillError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data
