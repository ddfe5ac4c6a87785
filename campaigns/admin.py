"""Admin: marketing spend, channel plans, campaigns and experiments (marketers and admins edit them; every change
to a plan, campaign or experiment is kept in its audit history)."""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from simple_history.admin import SimpleHistoryAdmin

from campaigns.experiments.crud import variant_errors
from campaigns.models import Campaign, ChannelPlan, Experiment, Exposure, MarketingSpend, Variant


@admin.register(MarketingSpend)
class MarketingSpendAdmin(admin.ModelAdmin):
    list_display = ["date", "period", "channel", "campaign_code", "amount"]
    list_filter = ["period", "channel", ("date", admin.DateFieldListFilter)]
    search_fields = ["campaign_code", "channel__key"]
    list_select_related = ["channel"]
    date_hierarchy = "date"


@admin.register(ChannelPlan)
class ChannelPlanAdmin(SimpleHistoryAdmin):
    list_display = ["stage", "channel", "objective", "kpi", "kpi_target", "owner", "active"]
    list_filter = ["stage__model", "channel", "active"]
    search_fields = ["objective", "strategy", "content", "owner"]
    list_select_related = ["stage__model", "channel"]


@admin.register(Campaign)
class CampaignAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "channel", "model", "start_date", "end_date", "budget", "status"]
    list_filter = ["status", "channel", "model"]
    search_fields = ["code", "name"]
    list_select_related = ["channel", "model"]
    filter_horizontal = ["stages"]
    date_hierarchy = "start_date"


class VariantFormSet(BaseInlineFormSet):
    """The same variant rules as the API (campaigns.experiments.crud.variant_errors): two or more, one control,
    weights summing to a positive number."""

    def clean(self) -> None:
        super().clean()
        variants = [
            {
                "key": form.cleaned_data.get("key"),
                "name": form.cleaned_data.get("name"),
                "weight": form.cleaned_data.get("weight"),
                "is_control": form.cleaned_data.get("is_control", False),
            }
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = variant_errors(variants)
        if errors:
            raise ValidationError(errors)


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 0
    min_num = 2


@admin.register(Experiment)
class ExperimentAdmin(SimpleHistoryAdmin):
    list_display = ["key", "name", "model", "stage", "goal", "window_days", "status", "started_at", "stopped_at"]
    list_filter = ["status", "goal", "model"]
    search_fields = ["key", "name"]
    list_select_related = ["model", "stage"]
    inlines = [VariantInline]


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ["experiment", "variant", "customer", "exposed_at"]
    list_filter = ["experiment"]
    raw_id_fields = ["customer"]
    list_select_related = ["experiment", "variant", "customer"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # exposures are recorded by the assignment API, never by hand

    def has_change_permission(self, request, obj=None) -> bool:
        return False
