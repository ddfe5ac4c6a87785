"""Core data: customers and what they do (orders, touchpoints, feedback) through which channels.

Campaigns are referred to by their code string only, so this app never depends on `campaigns`.
"""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from clm.base.history import history_user
from lifecycle.conditions import conditions_describe


class Channel(models.Model):
    key = models.SlugField(
        max_length=50, unique=True, verbose_name=_("key"), help_text=_("Used by the API and CSV imports, e.g. paid_ads")
    )
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_de = models.CharField(_("name (German)"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(get_user=history_user)  # audit: who changed what, when (admin history page)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name_en


class ConsentState(models.TextChoices):
    """Marketing consent on one channel, as shop platforms record it."""

    SUBSCRIBED = "subscribed", _("subscribed")
    PENDING = "pending", _("confirmation pending")
    UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
    NOT_SUBSCRIBED = "not_subscribed", _("not subscribed")


def source_updated_at_field() -> models.DateTimeField:
    return models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the source last changed this record; an update older than this one is ignored"),
    )


class Customer(models.Model):
    external_id = models.CharField(max_length=100, unique=True, help_text=_("The shop's id of this customer"))
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
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the personal data was erased (lifecycle.privacy); the events are kept")
    )
    email_consent = models.CharField(
        _("email marketing consent"), max_length=15, choices=ConsentState.choices, default=ConsentState.NOT_SUBSCRIBED
    )
    email_consent_at = models.DateTimeField(_("email consent since"), null=True, blank=True)
    email_consent_source = models.CharField(_("email consent source"), max_length=100, blank=True, default="")
    sms_consent = models.CharField(
        _("SMS marketing consent"), max_length=15, choices=ConsentState.choices, default=ConsentState.NOT_SUBSCRIBED
    )
    sms_consent_at = models.DateTimeField(_("SMS consent since"), null=True, blank=True)
    sms_consent_source = models.CharField(_("SMS consent source"), max_length=100, blank=True, default="")
    source_updated_at = source_updated_at_field()
    # Audit of admin edits, exports and erasures (ingestion writes in bulk and records none). Email and name
    # are left out so the history never holds a copy of them; an erasure replaces the external id in it.
    history = HistoricalRecords(get_user=history_user, excluded_fields=["email", "name"])

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(referred_by=F("pk")), name="customer_not_self_referred"),
            models.CheckConstraint(condition=Q(email_consent__in=ConsentState.values), name="customer_email_consent"),
            models.CheckConstraint(condition=Q(sms_consent__in=ConsentState.values), name="customer_sms_consent"),
        ]

    def __str__(self) -> str:
        return self.external_id


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("email")
    SMS = "sms", _("SMS")


class ConsentChange(models.Model):
    """A change of a customer's marketing consent on one channel (lifecycle.consent).

    Ingestion writes customers in bulk and records no audit-history rows, so each write path (ingestion, the
    admin) appends the consent changes it makes here: who agreed to or withdrew what, when and where.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_changes")
    channel = models.CharField(_("channel"), max_length=5, choices=ConsentChannel.choices)
    from_state = models.CharField(
        pgettext_lazy("consent change", "from"),
        max_length=15,
        choices=ConsentState.choices,
        blank=True,
        help_text=_("Empty: a new customer"),
    )
    to_state = models.CharField(pgettext_lazy("consent change", "to"), max_length=15, choices=ConsentState.choices)
    at = models.DateTimeField(
        _("changed at"), null=True, blank=True, help_text=_("When the consent changed, as its source says")
    )
    source = models.CharField(
        pgettext_lazy("consent change", "source"),
        max_length=100,
        blank=True,
        help_text=_("Where the consent was given"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), help_text=_("When CLM stored the change"))

    class Meta:
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.channel}: {self.from_state or '-'} → {self.to_state}"


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
    source_updated_at = source_updated_at_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["placed_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
        ]
        indexes = [
            models.Index(fields=["customer", "placed_at"], name="order_customer_placed"),
            models.Index(fields=["placed_at"], name="order_placed"),
            # Campaign results look orders up by code; most orders carry none.
            models.Index(fields=["campaign_code", "placed_at"], condition=~Q(campaign_code=""), name="order_campaign"),
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
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")
        ordering = ["occurred_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TouchpointKind.values), name="touchpoint_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="touchpoint_customer_occurred"),
            models.Index(fields=["channel", "occurred_at"], name="touchpoint_channel_occurred"),
            # Incremental passes: touchpoints entering or leaving a feature's window (lifecycle.features clocks).
            models.Index(fields=["occurred_at"], name="touchpoint_occurred"),
            models.Index(
                fields=["campaign_code", "occurred_at"], condition=~Q(campaign_code=""), name="touchpoint_campaign"
            ),
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
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["submitted_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=10), name="feedback_score_0_to_10"),
        ]
        indexes = [
            models.Index(fields=["customer", "submitted_at"], name="feedback_customer_submitted"),
            models.Index(fields=["submitted_at"], name="feedback_submitted"),
        ]

    def __str__(self) -> str:
        return f"{self.score} from {self.customer_id}"


# --- lifecycle models, stages, rules --------------------------------------------------------------


class LifecycleModel(models.Model):
    """An ordered list of stages that every customer is classified into (SPEC §3)."""

    key = models.SlugField(_("key"), max_length=50, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_de = models.CharField(_("name (German)"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    is_default = models.BooleanField(
        _("default model"), default=False, help_text=_("The model the dashboard shows first")
    )
    active = models.BooleanField(_("active"), default=True, help_text=_("Active models classify every customer"))
    fallback_stage = models.ForeignKey(
        "Stage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("fallback stage"),
        help_text=_("Where customers go when no rule matches"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("lifecycle model")
        verbose_name_plural = _("lifecycle models")
        ordering = ["-is_default", "key"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_model"),
        ]

    def __str__(self) -> str:
        return self.name_en


class StageKind(models.TextChoices):
    FUNNEL = "funnel"
    EXIT = "exit"


class Stage(models.Model):
    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(_("key"), max_length=50, help_text=_("Used by the API, e.g. active"))
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_de = models.CharField(_("name (German)"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    colour = models.CharField(_("colour"), max_length=7, default="#3b5bdb", help_text="#rrggbb")
    position = models.PositiveSmallIntegerField(
        _("position"), help_text=_("Place along the funnel (funnel stages: 1, 2, …)")
    )
    kind = models.CharField(_("kind"), max_length=6, choices=StageKind.choices, default=StageKind.FUNNEL)
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        help_text=_("Evaluation order: a customer is in the first stage (lowest number) whose rule matches"),
    )
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["model", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="stage_key_unique_in_model"),
            models.CheckConstraint(condition=Q(kind__in=StageKind.values), name="stage_kind_valid"),
            models.CheckConstraint(condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="stage_colour_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.model.key}: {self.name_en}"


class StageRule(models.Model):
    """Conditions joined by AND; a stage's rules are joined by OR.

    `conditions` is a list of {"feature", "operator", "value"} validated by lifecycle.rules.
    """

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="rules")
    conditions = models.JSONField(default=list)
    position = models.PositiveSmallIntegerField(default=1)
    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("stage rule")
        verbose_name_plural = _("stage rules")
        ordering = ["stage", "position", "id"]

    def __str__(self) -> str:
        return conditions_describe(self.conditions)


# --- classification state and history -------------------------------------------------------------


class RunKind(models.TextChoices):
    FULL = "full"
    PERIODIC = "periodic"
    RULE_CHANGE = "rule_change"
    EVENT = "event"
    BACKFILL = "backfill"


class RunStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ClassificationRun(models.Model):
    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=11, choices=RunKind.choices)
    as_of = models.DateTimeField()
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    customers_evaluated = models.PositiveIntegerField(default=0)
    transitions = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=9, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.TextField(blank=True, default="")
    incremental = models.BooleanField(
        default=False, help_text="Only customers with new data or crossing a time threshold were classified"
    )
    rules_fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["model", "-started_at"], name="run_model_started")]
        constraints = [
            # Beat started twice, or a pass still running when the next is due: the second one is refused.
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(kind="periodic", status="running"),
                name="one_running_periodic_run_per_model",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} run of {self.model.key} as of {self.as_of:%Y-%m-%d} ({self.status})"


class ChunkStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class ClassificationChunk(models.Model):
    """One customer id range of a run: classified in one transaction, by whichever worker takes it."""

    run = models.ForeignKey(ClassificationRun, on_delete=models.CASCADE, related_name="chunks")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    status = models.CharField(max_length=7, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    # Counted before the work starts, in its own transaction, so that deliveries cut off by a killed worker count.
    attempts = models.PositiveSmallIntegerField(default=0)
    customers_evaluated = models.PositiveIntegerField(default=0)
    transitions = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, default="", help_text="Who classified it (host, process)")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "first_id"]
        constraints = [models.UniqueConstraint(fields=["run", "first_id"], name="one_chunk_per_range_start")]

    def __str__(self) -> str:
        return f"chunk {self.first_id}..{self.last_id} of run {self.run_id} ({self.status})"


class ChangedCustomer(models.Model):
    """Outbox in PostgreSQL: a customer whose data changed and who awaits reclassification in one model.

    Written in the transaction that stores the change, so it survives a broker that is down; the next run that
    classifies the customer as of a later moment deletes it. Periodic passes classify only these customers and
    those whose time-based conditions cross a threshold.
    """

    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["model", "customer"], name="changedcustomer_model_customer")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} changed at {self.changed_at:%Y-%m-%d %H:%M} (model {self.model_id})"


class TransitionCause(models.TextChoices):
    EVENT = "event"
    PERIODIC = "periodic"
    BACKFILL = "backfill"
    RULE_CHANGE = "rule_change"
    MANUAL = "manual"


class CustomerStage(models.Model):
    """A customer's current stage in one model, and since when."""

    # No index of its own: one_stage_per_model leads with the model. A second one misled PostgreSQL when its
    # statistics did not know a model's rows yet (its first pass): it probed "model = m" and filtered by customer.
    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="stages")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="customer_stages")
    since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "customer"], name="one_stage_per_model")]
        indexes = [models.Index(fields=["model", "stage"], name="customerstage_model_stage")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.stage_id} since {self.since:%Y-%m-%d}"


class StageTransition(models.Model):
    """Append-only log of stage changes: what funnels, flows and time in stage are computed from."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="transitions")
    model = models.ForeignKey(LifecycleModel, on_delete=models.CASCADE, related_name="+")
    from_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    cause = models.CharField(max_length=11, choices=TransitionCause.choices)
    run = models.ForeignKey(ClassificationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["model", "at"], name="transition_model_at"),
            models.Index(fields=["customer", "model", "at"], name="transition_customer_at"),
            models.Index(fields=["run", "customer"], name="transition_run_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_stage_id} → {self.to_stage_id} at {self.at:%Y-%m-%d}"
