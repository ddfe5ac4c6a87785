"""Admin: benchmarks and goals are edited by admins (with audit history); job runs and fits are read-only records."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from clm.base.admin import AuditHistoryAdmin
from lifecycle.admin import AdminRoleEditing
from metrics.models import ClvFit, MetricsRun, MetricTarget


@admin.register(MetricTarget)
class MetricTargetAdmin(AdminRoleEditing, AuditHistoryAdmin):
    list_display = ["metric", "label", "direction", "benchmark", "benchmark_source", "goal"]
    list_editable = ["goal"]
    search_fields = ["metric", "label"]
    fieldsets = [
        (None, {"fields": ["metric", "label", "direction"]}),
        (
            "Benchmark",
            {"fields": ["benchmark", "benchmark_source"], "description": "An industry figure and where it comes from."},
        ),
        ("Goal", {"fields": ["goal"], "description": "Your own target."}),
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MetricsRun)
class MetricsRunAdmin(ReadOnlyAdmin):
    list_display = ["job", "model", "as_of", "started_at", "finished_at", "status", "rows_written"]
    list_filter = ["job", "status"]
    date_hierarchy = "started_at"


@admin.register(ClvFit)
class ClvFitAdmin(ReadOnlyAdmin):
    list_display = ["fitted_at", "as_of", "customers", "repeat_customers", "r", "alpha", "a", "b", "p", "q", "gamma"]
