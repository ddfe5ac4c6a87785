"""Forms of the campaigns pages: they parse the browser's input; the services validate it and write.

A service's ValidationError ({field: [message]}) is put back on the form with `errors_add`, so every problem shows
next to its field and nothing is saved.
"""

from typing import Any

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from campaigns.models import CampaignStatus, ExperimentGoal, SpendPeriod
from lifecycle.models import Channel, LifecycleModel, Stage

_DATE = {"type": "date"}


def name_in_language(obj: Any) -> str:
    """The object's name in the current language (models, stages and channels carry both)."""
    german = (translation.get_language() or "").startswith("de")
    return obj.name_de if german and getattr(obj, "name_de", "") else obj.name_en


class NameChoiceField(forms.ModelChoiceField):
    """Choices labelled with their names in the page's language."""

    def label_from_instance(self, obj: Any) -> str:
        return name_in_language(obj)


class _StageChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Stage) -> str:
        return f"{name_in_language(obj.model)}: {name_in_language(obj)}"


class _StagesChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Stage) -> str:
        return f"{name_in_language(obj.model)}: {name_in_language(obj)}"


def _stages() -> Any:
    return Stage.objects.select_related("model").order_by("model__key", "position", "pk")


class ChannelPlanForm(forms.Form):
    """One stage × channel cell of the plan matrix."""

    objective = forms.CharField(label=_("Objective"), max_length=300)
    strategy = forms.CharField(label=_("Strategy"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    content = forms.CharField(label=_("Content / offer"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kpi = forms.CharField(label=_("KPI"), max_length=200, required=False)
    kpi_target = forms.DecimalField(label=_("KPI target"), max_digits=12, decimal_places=4, required=False)
    owner = forms.CharField(label=_("Owner"), max_length=100, required=False)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def plan_fields(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class CampaignForm(forms.Form):
    code = forms.CharField(
        label=_("Code"), max_length=100, strip=False, help_text=_("The code orders and touchpoints carry.")
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    channel = NameChoiceField(label=_("Channel"), queryset=Channel.objects.order_by("key"), to_field_name="key")
    model = NameChoiceField(
        label=_("Lifecycle model"), queryset=LifecycleModel.objects.order_by("key"), to_field_name="key"
    )
    stages = _StagesChoice(
        label=_("Target stages"),
        queryset=_stages(),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Stages of the chosen model."),
    )
    start_date = forms.DateField(label=_("Start"), widget=forms.DateInput(attrs=_DATE))
    end_date = forms.DateField(label=_("End"), widget=forms.DateInput(attrs=_DATE))
    budget = forms.DecimalField(label=_("Budget"), max_digits=14, decimal_places=2, min_value=0, required=False)
    status = forms.ChoiceField(label=_("Status"), choices=CampaignStatus.choices, initial=CampaignStatus.DRAFT)
    attribution_days = forms.IntegerField(label=_("Attribution window (days)"), min_value=1, max_value=365, initial=30)

    def campaign_fields(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["stages"] = list(data["stages"])
        return data


class SpendForm(forms.Form):
    # SpendPeriod's own labels are not translated (they are the API's values, capitalised).
    period = forms.ChoiceField(
        label=_("Period"),
        choices=[(SpendPeriod.DAY, _("day")), (SpendPeriod.MONTH, _("month"))],
        initial=SpendPeriod.DAY,
    )
    date = forms.DateField(
        label=_("Date"),
        widget=forms.DateInput(attrs=_DATE),
        help_text=_("For a month, any day of it: monthly spend is recorded on the 1st."),
    )
    amount = forms.DecimalField(label=_("Amount"), max_digits=14, decimal_places=2, min_value=0)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Spend's write path refuses a monthly date not on the 1st; a person picking a day of the month means it.
        if data.get("period") == SpendPeriod.MONTH and data.get("date"):
            data["date"] = data["date"].replace(day=1)
        return data


class AsOfForm(forms.Form):
    as_of = forms.DateField(label=_("Results as of"), required=False, widget=forms.DateInput(attrs=_DATE))


class ExperimentForm(forms.Form):
    key = forms.SlugField(label=_("Key"), max_length=80, help_text=_("Part of the assignment: it never changes."))
    name = forms.CharField(label=_("Name"), max_length=200)
    hypothesis = forms.CharField(label=_("Hypothesis"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    model = NameChoiceField(
        label=_("Lifecycle model"), queryset=LifecycleModel.objects.order_by("key"), to_field_name="key"
    )
    stage = _StageChoice(label=_("Population: customers in stage"), queryset=_stages())
    channel = NameChoiceField(
        label=_("Only customers reached on channel"),
        queryset=Channel.objects.filter(active=True).order_by("key"),
        to_field_name="key",
        required=False,
        empty_label=_("any channel"),
    )
    goal = forms.ChoiceField(label=_("Goal"), choices=ExperimentGoal.choices, initial=ExperimentGoal.PLACE_ORDER)
    goal_stage = _StageChoice(
        label=_("Goal stage"), queryset=_stages(), required=False, help_text=_("Only for the goal 'reach a stage'.")
    )
    window_days = forms.IntegerField(label=_("Window (days)"), min_value=1, max_value=365, initial=30)
    minimum_detectable_effect = forms.FloatField(
        label=_("Minimum detectable effect"),
        initial=0.02,
        help_text=_("In conversion-rate points: 0.02 = 2 points."),
    )
    power = forms.FloatField(label=_("Power"), initial=0.8)
    alpha = forms.FloatField(label=_("Significance level (alpha)"), initial=0.05)

    def experiment_fields(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class VariantForm(forms.Form):
    key = forms.SlugField(label=_("Key"), max_length=50)
    name = forms.CharField(label=_("Name"), max_length=200)
    weight = forms.IntegerField(label=_("Weight"), min_value=0, initial=1)
    is_control = forms.BooleanField(label=_("Control"), required=False)


VariantFormSet = forms.formset_factory(VariantForm, extra=2, max_num=10, validate_max=True)
# What a new experiment's form starts with: a control and one alternative.
VARIANTS_INITIAL = [
    {"key": "control", "name": _("Control"), "weight": 1, "is_control": True},
    {"key": "variant", "name": _("Variant"), "weight": 1, "is_control": False},
]


def variants_data(formset: forms.BaseFormSet) -> list[dict[str, Any]]:
    """The filled-in variant rows (blank extra rows are left out), as the service takes them."""
    return [dict(form.cleaned_data) for form in formset if form.cleaned_data.get("key")]
