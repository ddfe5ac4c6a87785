from django.contrib import admin

from campaigns.models import MarketingSpend


@admin.register(MarketingSpend)
class MarketingSpendAdmin(admin.ModelAdmin):
    list_display = ["date", "period", "channel", "campaign_code", "amount"]
    list_filter = ["period", "channel", ("date", admin.DateFieldListFilter)]
    search_fields = ["campaign_code", "channel__key"]
    list_select_related = ["channel"]
    date_hierarchy = "date"
