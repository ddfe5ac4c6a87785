"""The marketing_spend ingest kind: the one write path of spend, so every writer follows the same rules and upsert.

The marketing-spend/ API and the CSV import write through it (records_ingest), the campaign page and API too
(campaigns/campaigns/spend.py); the demo writes its generated rows with the kind's upsert (records_write), monthly
ones dated on the 1st by construction. Its messages are translated: the campaign page shows them in German, the API
in the request's language (English unless asked otherwise)."""

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from campaigns.models import NOT_FIRST_OF_MONTH, MarketingSpend, SpendPeriod, spend_date_problem
from lifecycle.ingest import IngestKind, IngestSerializer, ingest_kind_register
from lifecycle.ingest_kinds import FUTURE_TOLERANCE, ChannelKeyField, campaign_code_field


class MarketingSpendIngestSerializer(IngestSerializer):
    channel = ChannelKeyField(source="channel_id")
    campaign_code = campaign_code_field()
    period = serializers.ChoiceField(choices=SpendPeriod.choices)
    date = serializers.DateField(
        help_text="The day; for monthly spend the first day of the month (another day is refused)"
    )
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)

    def validate_date(self, value: date) -> date:
        if value < date(1970, 1, 1):
            raise serializers.ValidationError(_("Date is before 1970-01-01."))
        if value > (timezone.now() + FUTURE_TOLERANCE).date():
            raise serializers.ValidationError(
                _("%(day)s is in the future; record spend once it is spent.") % {"day": value}
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problem = spend_date_problem(attrs["period"], attrs["date"])
        if problem:
            raise serializers.ValidationError({"date": [problem]}, code=NOT_FIRST_OF_MONTH)
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
