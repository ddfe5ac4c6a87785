"""Snapshot tables: what the metrics jobs precompute and pages and the API read (SPEC §4, §5).

Heavy results are stored as JSON keyed by (kind, model, as_of, filters) so a page reads one small row;
per-customer predictions and the daily pipeline series are real tables because rules and charts query them.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from clm.base.history import history_user
from lifecycle.models import Customer, LifecycleModel, RunStatus, Stage


class MetricsJob(models.TextChoices):
    PIPELINE = "pipeline", "daily pipeline counts"
    SNAPSHOTS = "snapshots", "metric snapshots"
    CLV_FIT = "clv_fit", "CLV fit (BG/NBD + Gamma-Gamma)"
    RFM = "rfm", "RFM quintile breakpoints"


class MetricsRun(models.Model):
    """One run of a metrics job, recorded like a classification run."""

    job = models.CharField(max_length=10, choices=MetricsJob.choices)
    model = models.ForeignKey(LifecycleModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    as_of = models.DateTimeField()
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=9, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["job", "-started_at"], name="metricsrun_job_started")]

    def __str__(self) -> str:
        return f"{self.job} as of {self.as_of:%Y-%m-%d} ({self.status})"


class PipelineSnapshot(models.Model):
    """Customers per stage at the end of a day (UTC), from the transition log."""

    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["model", "day", "stage"]
        constraints = [models.UniqueConstraint(fields=["model", "day", "stage"], name="pipeline_snapshot_unique")]

    def __str__(self) -> str:
        return f"{self.stage_id} on {self.day}: {self.count}"


class MetricSnapshot(models.Model):
    """One computed metric result, keyed by what it was computed for.

    `filters_key` is the canonical text of `filters` (metrics.filters), so equal requests find the same row.
    """

    kind = models.CharField(max_length=30)
    model = models.ForeignKey(LifecycleModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    as_of = models.DateField()
    filters_key = models.CharField(max_length=500)
    filters = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    result = models.JSONField(encoder=DjangoJSONEncoder)
    computed_at = models.DateTimeField()
    run = models.ForeignKey(MetricsRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-computed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "model", "as_of", "filters_key"],
                condition=Q(model__isnull=False),
                name="metric_snapshot_unique_with_model",
            ),
            models.UniqueConstraint(
                fields=["kind", "as_of", "filters_key"],
                condition=Q(model__isnull=True),
                name="metric_snapshot_unique_without_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} as of {self.as_of} ({self.filters_key})"


class ClvFit(models.Model):
    """Fitted BG/NBD and Gamma-Gamma parameters (time unit: weeks), on the events up to `as_of`."""

    as_of = models.DateTimeField()
    fitted_at = models.DateTimeField()
    customers = models.PositiveIntegerField()
    repeat_customers = models.PositiveIntegerField()
    r = models.FloatField()
    alpha = models.FloatField()
    a = models.FloatField()
    b = models.FloatField()
    log_likelihood = models.FloatField()
    p = models.FloatField(null=True, blank=True)
    q = models.FloatField(null=True, blank=True)
    gamma = models.FloatField(null=True, blank=True)
    duration_seconds = models.FloatField(default=0)
    run = models.ForeignKey(MetricsRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-fitted_at", "-id"]
        get_latest_by = "fitted_at"

    def __str__(self) -> str:
        return f"CLV fit as of {self.as_of:%Y-%m-%d} on {self.customers} customers"


class CustomerValue(models.Model):
    """A customer's RFM summary and predictions from the latest CLV fit (one row per customer)."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="value")
    fit = models.ForeignKey(ClvFit, on_delete=models.CASCADE, related_name="+")
    frequency = models.PositiveIntegerField(help_text=_("Repeat purchase days in the observation period"))
    recency_weeks = models.FloatField(help_text=_("Weeks from the first to the last purchase"))
    age_weeks = models.FloatField(help_text=_("T: weeks from the first purchase to as_of"))
    monetary_value = models.FloatField(help_text=_("Mean amount of the repeat purchases (0 without)"))
    p_alive = models.FloatField()
    expected_purchases_90d = models.FloatField()
    expected_purchases_365d = models.FloatField()
    expected_spend_90d = models.FloatField()
    expected_spend_365d = models.FloatField(help_text=_("Predicted CLV over the next 365 days"))

    def __str__(self) -> str:
        return f"{self.customer_id}: p_alive {self.p_alive:.2f}"


class RfmBreakpoints(models.Model):
    """Quintile edges of recency (days), frequency and monetary value among buyers as of a moment.

    Scores follow from them (metrics.rfm), so the rule features r/f/m_score are one CASE each.
    """

    as_of = models.DateTimeField()
    computed_at = models.DateTimeField()
    buyers = models.PositiveIntegerField()
    recency_days = models.JSONField(help_text=_("4 ascending edges"))
    frequency = models.JSONField(help_text=_("4 ascending edges"))
    monetary = models.JSONField(help_text=_("4 ascending edges"))
    run = models.ForeignKey(MetricsRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"
        verbose_name_plural = _("RFM breakpoints")

    def __str__(self) -> str:
        return f"RFM breakpoints as of {self.as_of:%Y-%m-%d}"


class MetricTarget(models.Model):
    """An industry benchmark (with its source) and an internal goal for one metric, editable by admins.

    `metric` names a rate of metrics.rates (e.g. `repeat_purchase_rate`) or a funnel step's conversion as
    `conversion:<model key>:<stage key>` (from that stage to the next funnel stage).
    """

    class Direction(models.TextChoices):
        HIGHER = "higher", "higher is better"
        LOWER = "lower", "lower is better"

    metric = models.CharField(max_length=120, unique=True)
    label = models.CharField(max_length=200)
    direction = models.CharField(max_length=6, choices=Direction.choices, default=Direction.HIGHER)
    benchmark = models.FloatField(null=True, blank=True, help_text=_("A share 0..1 (NPS: -100..100)"))
    benchmark_source = models.CharField(max_length=500, blank=True, default="")
    goal = models.FloatField(null=True, blank=True, help_text=_("Your own target, same unit as the benchmark"))
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["metric"]
        constraints = [
            models.CheckConstraint(
                condition=Q(benchmark__isnull=True) | ~Q(benchmark_source=""), name="benchmark_has_source"
            ),
        ]

    def __str__(self) -> str:
        return self.label
