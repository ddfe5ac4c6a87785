"""A connected shop and the webhook deliveries it sent."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from clm.base.crypto import EncryptedJSONField
from clm.base.history import history_user


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    SHOPWARE = "shopware", "Shopware 6"


class SourceStatus(models.TextChoices):
    NEW = "new", _("not connected yet")
    CONNECTED = "connected", _("connected")
    FAILING = "failing", _("failing")
    REJECTED = "rejected", _("credentials rejected")
    DISCONNECTED = "disconnected", _("disconnected")


class ImportState(models.TextChoices):
    NOT_STARTED = "not_started", _("not started")
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


def webhook_token() -> str:
    return secrets.token_urlsafe(24)


class Source(models.Model):
    """One connected shop. Its credentials are encrypted at rest and never shown again after saving."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices)
    shop_url = models.URLField(_("shop address"), help_text=_("e.g. https://example.myshopify.com"))
    currency = models.CharField(
        _("currency"), max_length=3, help_text=_("The shop's currency (ISO 4217); orders in another are refused")
    )
    credentials = EncryptedJSONField(_("credentials"), default=dict, blank=True)
    webhook_secret = EncryptedJSONField(_("webhook secret"), null=True, blank=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=webhook_token, editable=False)
    id_prefix = models.CharField(
        _("id prefix"),
        max_length=20,
        blank=True,
        default="",
        help_text=_("Put before the shop's customer and order ids; needed when several shops share CLM"),
    )
    completed_statuses = models.JSONField(
        _("completed order statuses"),
        default=list,
        blank=True,
        help_text=_("The platform's order statuses that count as a completed purchase"),
    )
    channel_rules = models.JSONField(
        _("channel rules"),
        default=list,
        blank=True,
        help_text=_("How UTM parameters, referrer and landing page map to channels, first match wins"),
    )
    status = models.CharField(_("status"), max_length=20, choices=SourceStatus.choices, default=SourceStatus.NEW)
    status_message = models.TextField(_("status message"), blank=True, default="")
    import_state = models.CharField(max_length=20, choices=ImportState.choices, default=ImportState.NOT_STARTED)
    import_checkpoint = models.JSONField(default=dict, blank=True)
    import_started_at = models.DateTimeField(null=True, blank=True)
    import_finished_at = models.DateTimeField(null=True, blank=True)
    import_total = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Customers and orders the history holds, where the platform says")
    )
    customers_imported = models.PositiveIntegerField(default=0)
    orders_imported = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)
    synced_until = models.DateTimeField(
        null=True, blank=True, help_text=_("Changes up to here are in; the next sync asks for later ones")
    )
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(
        get_user=history_user,
        excluded_fields=[
            "credentials",
            "webhook_secret",
            "import_checkpoint",
            "import_total",
            "customers_imported",
            "orders_imported",
            "items_skipped",
            "last_sync_at",
            "last_webhook_at",
            "updated_at",
        ],
    )

    class Meta:
        verbose_name = _("shop source")
        verbose_name_plural = _("shop sources")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["id_prefix"], name="source_id_prefix_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class SourceUnavailable(Exception):
    """A webhook or registration address that names no source (404), or a disconnected one (410)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def source_at_address(token: str, *, platform: str | None = None) -> Source:
    """The source a webhook (or Shopware registration) address names, if it takes data; else SourceUnavailable."""
    sources = Source.objects.filter(webhook_token=token)
    source = (sources.filter(platform=platform) if platform else sources).first()
    if source is None:
        raise SourceUnavailable(404, "not_found", "No source has this address.")
    if source.status == SourceStatus.DISCONNECTED:
        raise SourceUnavailable(410, "source_disconnected", "This source is disconnected; CLM takes no data from it.")
    return source


class SourceDelivery(models.Model):
    """A webhook delivery whose signature checked out, kept until processed; its id makes a repeat a no-op."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=200)
    topic = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    error = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_id"], name="source_delivery_unique"),
        ]
        indexes = [
            models.Index(fields=["received_at"], condition=Q(state="pending"), name="source_delivery_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.delivery_id}"


class UploadState(models.TextChoices):
    NEEDS_SOURCE = "needs_source", _("choose the shop")
    NEEDS_MAPPING = "needs_mapping", _("map the columns")
    CHECKING = "checking", _("checking")
    READY = "ready", _("ready to import")
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("importing")
    DONE = "done", _("imported")
    FAILED = "failed", _("failed")


class UploadMode(models.TextChoices):
    ATOMIC = "atomic", _("all or nothing: one bad line and nothing is imported")
    SKIP_INVALID = "skip_invalid", _("skip invalid lines: import the good ones")


class Upload(models.Model):
    """A CSV file an admin uploaded in the browser: its layout, the preview (check) and the import's outcome.

    The file lies under DATA_DIR/uploads/ (`path` is relative to it) until it is imported or discarded."""

    file_name = models.CharField(_("file"), max_length=255)
    path = models.CharField(max_length=300)
    size = models.PositiveBigIntegerField(_("size"))
    layout = models.CharField(_("layout"), max_length=40, blank=True, default="")  # "" not known (yet)
    header = models.JSONField(default=list, blank=True)  # the file's columns
    columns = models.JSONField(default=dict, blank=True)  # for an unknown layout: CLM field -> the file's column
    source = models.ForeignKey(
        Source, verbose_name=_("source"), null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    state = models.CharField(_("state"), max_length=20, choices=UploadState.choices, default=UploadState.CHECKING)
    mode = models.CharField(_("mode"), max_length=20, choices=UploadMode.choices, default=UploadMode.ATOMIC)
    progress = models.PositiveSmallIntegerField(default=0)  # percent, as of the last state change
    preview = models.JSONField(default=dict, blank=True)  # the check: rows, counts, errors, sample
    result = models.JSONField(default=dict, blank=True)  # the import: counts, errors
    message = models.TextField(blank=True, default="")  # why the file cannot be imported
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.file_name
