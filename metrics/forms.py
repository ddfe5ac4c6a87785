"""The filter bar of the dashboard pages: the same filters as the metrics API, validated into MetricFilters."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.forms import NameChoiceField
from clm.base.days import day_end
from lifecycle.models import Channel
from metrics.filters import MetricFilters, period_default


class FiltersForm(forms.Form):
    as_of = forms.DateField(label=_("As of"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    cohort_start = forms.DateField(
        label=_("First seen from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    cohort_end = forms.DateField(label=_("to"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    channel = NameChoiceField(
        label=_("Acquisition channel"),
        queryset=Channel.objects.filter(active=True),
        to_field_name="key",
        required=False,
        empty_label=_("all channels"),
    )
    window_days = forms.IntegerField(label=_("Conversion window (days)"), required=False, min_value=1, max_value=3650)

    def clean_as_of(self) -> date | None:
        value = self.cleaned_data.get("as_of")
        if value and value > timezone.now().date() + timedelta(days=1):
            raise forms.ValidationError(_("The date is in the future."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("cohort_start"), data.get("cohort_end")
        if start and end and start > end:
            self.add_error("cohort_end", _("The end of the range is before its start."))
        return data

    def filters(self) -> MetricFilters:
        """The validated filters; on invalid input, the defaults (the page shows the errors above them)."""
        data = self.cleaned_data if self.is_valid() else {}
        channel = data.get("channel")
        return MetricFilters(
            as_of=day_end(data.get("as_of") or timezone.now().date()),
            cohort_start=data.get("cohort_start"),
            cohort_end=data.get("cohort_end"),
            channel=channel.key if channel else None,
            window_days=data.get("window_days"),
        )


class PeriodForm(FiltersForm):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", _("The end of the period is before its start."))
        return data

    def period(self) -> tuple[date, date]:
        """The chosen period, by default the 30 days ending as of the filters' day."""
        data = self.cleaned_data if self.is_valid() else {}
        as_of = self.filters().as_of
        default_start, default_end = period_default(as_of)
        return data.get("start") or default_start, data.get("end") or default_end
