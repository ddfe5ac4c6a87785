from django.db import models
from django.db.models import Q

from lifecycle.models import Channel


class SpendPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"


class MarketingSpend(models.Model):
    """Money spent on a channel (optionally one campaign) on a day or in a month.

    One row per (channel, campaign code, period, date); `date` is the first day of the month for monthly spend.
    """

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="spend")
    campaign_code = models.CharField(max_length=100, blank=True, default="")
    period = models.CharField(max_length=5, choices=SpendPeriod.choices)
    date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date", "channel_id", "campaign_code"]
        verbose_name_plural = "marketing spend"
        constraints = [
            models.UniqueConstraint(fields=["channel", "campaign_code", "period", "date"], name="spend_unique_period"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="spend_amount_not_negative"),
            models.CheckConstraint(condition=Q(period__in=SpendPeriod.values), name="spend_period_valid"),
        ]
        indexes = [models.Index(fields=["date"], name="spend_date")]

    def __str__(self) -> str:
        return f"{self.channel} {self.period} {self.date}: {self.amount}"
