from django.contrib import admin

from lifecycle.models import Channel, Customer, Feedback, Order, Touchpoint


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["key", "name_en", "name_de", "active"]
    list_filter = ["active"]
    search_fields = ["key", "name_en", "name_de"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "email", "name", "first_seen_at", "acquisition_channel", "referred_by"]
    list_filter = ["acquisition_channel", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "email", "name"]
    raw_id_fields = ["referred_by"]
    list_select_related = ["acquisition_channel", "referred_by"]
    date_hierarchy = "first_seen_at"
    show_full_result_count = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "placed_at", "amount", "status", "channel", "campaign_code"]
    list_filter = ["status", "channel", ("placed_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "campaign_code"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "channel"]
    date_hierarchy = "placed_at"
    show_full_result_count = False


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "occurred_at", "channel", "kind", "campaign_code", "value"]
    list_filter = ["kind", "channel", ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "campaign_code"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "channel"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "submitted_at", "score", "comment"]
    list_filter = ["score", ("submitted_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "comment"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False
