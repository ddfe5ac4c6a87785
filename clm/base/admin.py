from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey as LibraryApiKey
from simple_history.admin import SimpleHistoryAdmin

from clm.base.models import ApiKey, WorkerHeartbeat


class AuditHistoryAdmin(SimpleHistoryAdmin):
    """History pages list who changed what and when, with each field's before → after."""

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied("Past versions are read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_actions(self, request: HttpRequest) -> dict:
        # One object at a time: each deletion is checked (and may queue a run) on its own confirmation page.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# The library's own key model is unused: CLM's ApiKey adds scopes and last-used time.
admin.site.unregister(LibraryApiKey)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditHistoryAdmin, APIKeyModelAdmin):
    # djangorestframework-api-key leaves its list_display and list_filter unannotated, so mypy takes their tuple
    # literals for the types; ModelAdmin accepts any list or tuple of names.
    list_display = [*APIKeyModelAdmin.list_display, "scope_read", "scope_write", "scope_admin", "last_used_at"]  # type: ignore[assignment]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope_read", "scope_write", "scope_admin"]  # type: ignore[assignment]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "last_used_at"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at", "hostname"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
