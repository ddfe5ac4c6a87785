"""The inputs of the metrics (SPEC §4): the filters every metric accepts and each metric's own parameters, as the
DRF serializers that validate them. The registry (metrics.kinds) names each metric's input; the API validates the
query string with it and the schema lists its fields as the operation's parameters.
"""

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from clm.base.days import day_end
from lifecycle.models import Channel
from metrics.filters import MetricFilters, period_default

_MAX_DAYS = 3660


class MetricInput(serializers.Serializer):
    """A metric's input: its fields are the filters (`filters()`) and the metric's parameters."""

    def filters(self) -> MetricFilters:
        raise NotImplementedError


class FiltersInput(MetricInput):
    """The filters every metric accepts (SPEC §4)."""

    as_of = serializers.DateField(
        required=False, help_text="The day the metric is computed as of (its end, UTC); default today"
    )
    cohort_start = serializers.DateField(required=False, help_text="Only customers first seen on or after this day")
    cohort_end = serializers.DateField(required=False, help_text="Only customers first seen on or before this day")
    channel = serializers.SlugField(required=False, help_text="Only customers acquired through this channel (its key)")
    window_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Funnel: a step counts only within N days of the previous",
    )
    export = serializers.ChoiceField(
        choices=["csv"], required=False, help_text="Customer lists only: `csv` streams every customer as a CSV file"
    )

    def validate_as_of(self, value: date) -> date:
        if value > timezone.now().date() + timedelta(days=1):
            raise serializers.ValidationError(f"{value.isoformat()} is in the future.")
        return value

    def validate_channel(self, value: str) -> str:
        if not Channel.objects.filter(key=value).exists():
            known = ", ".join(Channel.objects.order_by("key").values_list("key", flat=True))
            raise serializers.ValidationError(f"Unknown channel {value!r}; known: {known}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("cohort_start"), attrs.get("cohort_end")
        if start and end and start > end:
            raise serializers.ValidationError(
                {"cohort_end": [f"cohort_end ({end.isoformat()}) is before cohort_start ({start.isoformat()})."]}
            )
        return attrs

    def filters(self) -> MetricFilters:
        data = self.validated_data
        return MetricFilters(
            as_of=day_end(data.get("as_of") or timezone.now().date()),
            cohort_start=data.get("cohort_start"),
            cohort_end=data.get("cohort_end"),
            channel=data.get("channel"),
            window_days=data.get("window_days"),
        )


# Inputs that are not a metric's parameters: the filters every metric takes, and the choice of model.
_NOT_PARAMETERS = frozenset([*FiltersInput._declared_fields, "model"])


def parameter_names(input_class: type[MetricInput]) -> tuple[str, ...]:
    """The inputs of `input_class` that are the metric's parameters (part of its snapshot key), in their order."""
    return tuple(name for name in input_class._declared_fields if name not in _NOT_PARAMETERS)


class PeriodInput(FiltersInput):
    start = serializers.DateField(required=False, help_text="First day of the period; default 29 days before `end`")
    end = serializers.DateField(required=False, help_text="Last day of the period (inclusive); default as_of")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        as_of = attrs.get("as_of") or timezone.now().date()
        default_start, _ = period_default(day_end(attrs.get("end") or as_of))
        start, end = attrs.get("start") or default_start, attrs.get("end") or as_of
        if start > end:
            raise serializers.ValidationError(
                {"end": [f"end ({end.isoformat()}) is before start ({start.isoformat()})."]}
            )
        if (end - start).days > _MAX_DAYS:
            raise serializers.ValidationError({"start": [f"A period spans at most {_MAX_DAYS} days."]})
        if start > as_of:  # the metrics read the history up to as_of: a period after it has no data yet
            raise serializers.ValidationError(
                {"start": [f"The period starts ({start.isoformat()}) after as_of ({as_of.isoformat()})."]}
            )
        attrs["start"], attrs["end"] = start, end
        return attrs


class RatesInput(PeriodInput):
    model = serializers.SlugField(
        required=False, help_text="A model's key (churn, reactivation, NPS per stage); default: the default model"
    )


class CohortsInput(FiltersInput):
    measure = serializers.ChoiceField(
        choices=["share", "revenue"],
        default="share",
        help_text="share with an order in month k, or cumulative revenue per customer",
    )


class RfmInput(FiltersInput):
    start = serializers.DateField(
        required=False, help_text="With it: how customers moved between segments from then to as_of"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        as_of = attrs.get("as_of") or timezone.now().date()
        if attrs.get("start") and attrs["start"] >= as_of:
            raise serializers.ValidationError(
                {"start": [f"start ({attrs['start'].isoformat()}) must be before as_of."]}
            )
        return attrs


class ActivityInput(FiltersInput):
    interval = serializers.ChoiceField(choices=["week", "month"], default="week")


class ClvAccuracyInput(MetricInput):
    """No filters: the predictions are measured on every customer as of the calibration end."""

    calibration_end = serializers.DateField(help_text="Fit on the events up to this day; compare predictions after it")
    holdout_end = serializers.DateField(required=False, help_text="End of the holdout period; default the last order")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = timezone.now().date()
        if attrs["calibration_end"] >= today:
            raise serializers.ValidationError({"calibration_end": ["calibration_end must be in the past."]})
        holdout_end = attrs.get("holdout_end")
        if holdout_end and holdout_end <= attrs["calibration_end"]:
            raise serializers.ValidationError({"holdout_end": ["holdout_end must be after calibration_end."]})
        return attrs

    def filters(self) -> MetricFilters:
        return MetricFilters(as_of=day_end(self.validated_data["calibration_end"]))
