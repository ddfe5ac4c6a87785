"""The sources in the admin: their state and deliveries to look at; connecting and editing is on /sources/, whose
form never shows a stored secret."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from lifecycle.sources.models import Source, SourceDelivery


@admin.register(Source)
class SourceAdmin(SimpleHistoryAdmin):
    list_display = ["name", "platform", "status", "import_state", "customers_imported", "orders_imported"]
    list_filter = ["platform", "status"]
    exclude = ["credentials", "webhook_secret"]
    readonly_fields = [
        field.name for field in Source._meta.fields if field.name not in ("credentials", "webhook_secret")
    ]

    def has_add_permission(self, request) -> bool:
        return False  # connecting takes the platform's credential fields: /sources/new/<platform>/


@admin.register(SourceDelivery)
class SourceDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "source", "topic", "delivery_id", "state"]
    list_filter = ["source", "state", "topic"]
    readonly_fields = [field.name for field in SourceDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
