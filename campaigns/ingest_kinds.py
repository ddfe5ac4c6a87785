from datetime import date
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from campaigns.models import MarketingSpend, SpendPeriod
from lifecycle.ingest import IngestKind, ingest_kind_register
from lifecycle.ingest_kinds import FUTURE_TOLERANCE, ChannelKeyField, campaign_code_field


class MarketingSpendIngestSerializer(serializers.Serializer):
    channel = ChannelKeyField(source="channel_id")
    campaign_code = campaign_code_field()
    period = serializers.ChoiceField(choices=SpendPeriod.choices)
    date = serializers.DateField(help_text="The day, or the first day of the month for monthly spend")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)

    def validate_date(self, value: date) -> date:
        if value < date(1970, 1, 1):
            raise serializers.ValidationError("Date is before 1970-01-01.")
        if value > (timezone.now() + FUTURE_TOLERANCE).date():
            raise serializers.ValidationError("Date is in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["period"] == SpendPeriod.MONTH and attrs["date"].day != 1:
            raise serializers.ValidationError({"date": "Monthly spend is dated on the first day of its month."})
        attrs.setdefault("campaign_code", "")
        return attrs


MARKETING_SPEND = ingest_kind_register(
    IngestKind(
        name="marketing_spend",
        model=MarketingSpend,
        serializer_class=MarketingSpendIngestSerializer,
        key_fields=("channel_id", "campaign_code", "period", "date"),
    )
)
