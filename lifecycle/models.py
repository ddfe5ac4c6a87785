"""Core data: customers and what they do (orders, touchpoints, feedback) through which channels.

Campaigns are referred to by their code string only, so this app never depends on `campaigns`.
"""

from django.db import models
from django.db.models import F, Q


class Channel(models.Model):
    key = models.SlugField(max_length=50, unique=True, help_text="Used by the API and CSV imports, e.g. paid_ads")
    name_en = models.CharField("name (English)", max_length=100)
    name_de = models.CharField("name (German)", max_length=100)
    description = models.TextField(blank=True, default="")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name_en


class Customer(models.Model):
    external_id = models.CharField(max_length=100, unique=True, help_text="The shop's id of this customer")
    email = models.EmailField(max_length=254, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    first_seen_at = models.DateTimeField(db_index=True)
    acquisition_channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="acquired_customers"
    )
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referred_customers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(referred_by=F("pk")), name="customer_not_self_referred"),
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderStatus(models.TextChoices):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Order(models.Model):
    external_id = models.CharField(max_length=100, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    placed_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="In the shop's currency")
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.COMPLETED)
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    campaign_code = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placed_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
        ]
        indexes = [
            models.Index(fields=["customer", "placed_at"], name="order_customer_placed"),
            models.Index(fields=["placed_at"], name="order_placed"),
        ]

    def __str__(self) -> str:
        return self.external_id


class TouchpointKind(models.TextChoices):
    AD_IMPRESSION = "ad_impression"
    AD_CLICK = "ad_click"
    SITE_VISIT = "site_visit"
    PRODUCT_VIEW = "product_view"
    CART_ADD = "cart_add"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    APP_PUSH_OPEN = "app_push_open"
    SOCIAL_ENGAGEMENT = "social_engagement"
    REVIEW = "review"
    SUPPORT_CONTACT = "support_contact"
    REFERRAL_SENT = "referral_sent"


class Touchpoint(models.Model):
    external_id = models.CharField(
        max_length=100, unique=True, help_text="The shop's event id; derived from the content when not sent"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="touchpoints")
    occurred_at = models.DateTimeField()
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="touchpoints")
    kind = models.CharField(max_length=20, choices=TouchpointKind.choices)
    campaign_code = models.CharField(max_length=100, blank=True, default="")
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True, help_text="e.g. review stars")
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TouchpointKind.values), name="touchpoint_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="touchpoint_customer_occurred"),
            models.Index(fields=["channel", "occurred_at"], name="touchpoint_channel_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id}"


class Feedback(models.Model):
    external_id = models.CharField(
        max_length=100, unique=True, help_text="The survey response id; derived from the content when not sent"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="feedback")
    score = models.PositiveSmallIntegerField(help_text="Answer to the NPS question, 0..10")
    comment = models.TextField(blank=True, default="")
    submitted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["submitted_at", "id"]
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=10), name="feedback_score_0_to_10"),
        ]
        indexes = [models.Index(fields=["customer", "submitted_at"], name="feedback_customer_submitted")]

    def __str__(self) -> str:
        return f"{self.score} from {self.customer_id}"
