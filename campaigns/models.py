from datetime import date

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from clm.base.history import history_user
from lifecycle.models import Channel, Customer, LifecycleModel, Stage


class SpendPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"


# The error code of a monthly date that is not the first of its month (spend_date_problem).
NOT_FIRST_OF_MONTH = "not_first_of_month"


def spend_date_problem(period: str, day: date) -> str | None:
    """Why `day` cannot date spend of this period, or None: monthly spend is dated on the first of its month.

    The one rule, stated once, for every writer of spend: the marketing_spend ingest kind (the API, the CSV import,
    the campaign page and API) and the admin (MarketingSpend.clean)."""
    if period == SpendPeriod.MONTH and day.day != 1:
        return gettext("Monthly spend is dated on the first day of its month: %(first)s, not %(day)s.") % {
            "first": day.replace(day=1),
            "day": day,
        }
    return None


class MarketingSpend(models.Model):
    """Money spent on a channel (optionally one campaign) on a day or in a month.

    One row per (channel, campaign code, period, date); `date` is the first day of the month for monthly spend.
    Rows are written through the marketing_spend ingest kind (campaigns/ingest_kinds.py), or edited in the admin.
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
        verbose_name_plural = _("marketing spend")
        constraints = [
            models.UniqueConstraint(fields=["channel", "campaign_code", "period", "date"], name="spend_unique_period"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="spend_amount_not_negative"),
            models.CheckConstraint(condition=Q(period__in=SpendPeriod.values), name="spend_period_valid"),
        ]
        indexes = [models.Index(fields=["date"], name="spend_date")]

    def __str__(self) -> str:
        return f"{self.channel} {self.period} {self.date}: {self.amount}"

    def clean(self) -> None:
        problem = spend_date_problem(self.period, self.date) if self.date else None
        if problem:
            raise ValidationError({"date": ValidationError(problem, code=NOT_FIRST_OF_MONTH)})


# --- channel plans ---------------------------------------------------------------------------------


class ChannelPlan(models.Model):
    """What one channel does for the customers of one stage (SPEC §6): a cell of the stage × channel matrix."""

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="channel_plans")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="plans")
    objective = models.CharField(max_length=300, help_text=_("What this channel should achieve for this stage"))
    strategy = models.TextField(blank=True, default="")
    content = models.TextField(_("content / offer"), blank=True, default="")
    kpi = models.CharField(_("KPI"), max_length=200, blank=True, default="", help_text=_("e.g. repeat purchase rate"))
    kpi_target = models.DecimalField(_("KPI target"), max_digits=12, decimal_places=4, null=True, blank=True)
    owner = models.CharField(max_length=100, blank=True, default="")
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["stage__model", "stage__position", "channel__key"]
        constraints = [models.UniqueConstraint(fields=["stage", "channel"], name="one_plan_per_stage_and_channel")]

    def __str__(self) -> str:
        return f"{self.stage} × {self.channel}: {self.objective}"


# --- campaigns -------------------------------------------------------------------------------------


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    ACTIVE = "active", _("active")
    PAUSED = "paused", _("paused")
    COMPLETED = "completed", _("completed")


class Campaign(models.Model):
    """A marketing campaign; orders and touchpoints carry its `code` (like a UTM campaign), spend is recorded
    under the same code (MarketingSpend.campaign_code)."""

    code = models.CharField(max_length=100, unique=True, help_text=_("The campaign code orders and touchpoints carry"))
    name = models.CharField(max_length=200)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="campaigns")
    model = models.ForeignKey(LifecycleModel, on_delete=models.PROTECT, related_name="campaigns")
    stages = models.ManyToManyField(Stage, related_name="campaigns", help_text=_("Target stages (of the model)"))
    start_date = models.DateField()
    end_date = models.DateField()
    budget = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=9, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    attribution_days = models.PositiveSmallIntegerField(
        default=30, help_text=_("Orders within this many days of a campaign touchpoint are attributed to it")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[stages], get_user=history_user)

    class Meta:
        ordering = ["-start_date", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__gte=models.F("start_date")), name="campaign_ends_after_start"),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0), name="campaign_budget_not_negative"
            ),
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(attribution_days__gte=1), name="campaign_attribution_days_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


# --- experiments -----------------------------------------------------------------------------------


class ExperimentGoal(models.TextChoices):
    REACH_STAGE = "reach_stage", _("reach a stage")
    PLACE_ORDER = "place_order", _("place an order")


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    RUNNING = "running", _("running")
    STOPPED = "stopped", _("stopped")


class Experiment(models.Model):
    """An A/B or multivariate test on the customers of one stage (optionally reached through one channel)."""

    key = models.SlugField(max_length=80, unique=True, help_text=_("Part of the assignment hash: never change it"))
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True, default="")
    model = models.ForeignKey(LifecycleModel, on_delete=models.PROTECT, related_name="experiments")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="experiments", help_text=_("Population"))
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments")
    goal = models.CharField(max_length=11, choices=ExperimentGoal.choices, default=ExperimentGoal.PLACE_ORDER)
    goal_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    window_days = models.PositiveSmallIntegerField(default=30, help_text=_("The goal counts within N days of exposure"))
    minimum_detectable_effect = models.FloatField(
        default=0.02, help_text=_("Absolute difference in conversion rate worth detecting (e.g. 0.02 = 2 points)")
    )
    power = models.FloatField(default=0.8)
    alpha = models.FloatField(default=0.05)
    status = models.CharField(max_length=7, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(goal__in=ExperimentGoal.values), name="experiment_goal_valid"),
            models.CheckConstraint(condition=Q(status__in=ExperimentStatus.values), name="experiment_status_valid"),
            models.CheckConstraint(
                condition=~Q(goal=ExperimentGoal.REACH_STAGE) | Q(goal_stage__isnull=False),
                name="experiment_stage_goal_names_a_stage",
            ),
            models.CheckConstraint(condition=Q(window_days__gte=1), name="experiment_window_positive"),
            models.CheckConstraint(
                condition=Q(stopped_at__isnull=True)
                | Q(started_at__isnull=False) & Q(stopped_at__gte=models.F("started_at")),
                name="experiment_stops_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    weight = models.PositiveIntegerField(default=1, help_text=_("Share of assignments relative to the other variants"))
    is_control = models.BooleanField(default=False)

    class Meta:
        ordering = ["experiment", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique_in_experiment"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="one_control_per_experiment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}: {self.key}"


class Exposure(models.Model):
    """A customer's recorded assignment: the first time the shop asked for their variant (idempotent)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="exposures")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="exposures")
    exposed_at = models.DateTimeField()

    class Meta:
        ordering = ["exposed_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["experiment", "customer"], name="one_exposure_per_customer")]
        indexes = [models.Index(fields=["variant", "exposed_at"], name="exposure_variant_at")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.variant_id}"
