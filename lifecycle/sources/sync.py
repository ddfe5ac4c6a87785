"""Bringing a shop's data in: the resumable history import, the incremental sync and webhook deliveries.

Every page is written together with the checkpoint after it, in one transaction: an import killed at any moment
resumes from the last page written and writes nothing twice (the upserts would make a repeat harmless anyway).
"""

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clm.base.locks import job_lock
from lifecycle.sources.models import DeliveryState, ImportState, Source, SourceDelivery, SourceStatus
from lifecycle.sources.platforms import PLATFORMS, CredentialsRejected, Page, WebhookRefused
from lifecycle.sources.records import BatchOutcome, ShopBatch, shop_batch_ingest
from lifecycle.tasks import reclassify_customers_on_commit

logger = logging.getLogger(__name__)

# Changes a shop records while a sync runs may carry an updated_at a little before the sync's start.
SYNC_OVERLAP = timedelta(minutes=5)
SKIPPED_SHOWN = 20
# A history import runs in slices well inside Celery's time limits (CELERY_TASK_SOFT_TIME_LIMIT, 25 minutes by
# default); each slice queues the next, so a shop of any size is imported without a task being killed.
IMPORT_SLICE = timedelta(minutes=10)  # skipped items named on the source page; the count holds them all


def _page_write(source: Source, page: Page, *, checkpoint_field: str | None) -> BatchOutcome:
    with transaction.atomic():
        outcome = shop_batch_ingest(source=source, batch=page.batch)
        updates: dict = {
            "customers_imported": F("customers_imported") + outcome.customers,
            "orders_imported": F("orders_imported") + outcome.orders,
            "items_skipped": F("items_skipped") + len(outcome.skipped),
        }
        if checkpoint_field is not None:
            updates[checkpoint_field] = page.checkpoint or {}
            if page.total is not None:
                updates["import_total"] = page.total
        Source.objects.filter(pk=source.pk).update(**updates)
    if outcome.skipped:
        logger.info("source %s: skipped %d item(s): %s", source.pk, len(outcome.skipped), outcome.skipped[:3])
    return outcome


def import_lock(source_id: int) -> str:
    """The lock a source's history import and sync hold, so they never run at once."""
    return f"source-import-{source_id}"


def _status_set(source_id: int, status: str, message: str = "", **fields) -> None:
    Source.objects.filter(pk=source_id).update(status=status, status_message=message, **fields)


def history_import_run(*, source_id: int, slice_seconds: float = IMPORT_SLICE.total_seconds()) -> str:
    """Import the shop's history from the stored checkpoint on, for at most about `slice_seconds`; returns the
    import state it ends in: QUEUED when the slice ran out and the caller is to queue the next one."""
    with job_lock(import_lock(source_id)) as acquired:
        if not acquired:
            return ImportState.RUNNING
        source = Source.objects.get(pk=source_id)
        if source.status == SourceStatus.DISCONNECTED or source.import_state == ImportState.DONE:
            return source.import_state
        deadline = time.monotonic() + slice_seconds
        if source.import_started_at is None:
            source.import_started_at = timezone.now()
        Source.objects.filter(pk=source_id).update(
            import_state=ImportState.RUNNING, import_started_at=source.import_started_at
        )
        client = PLATFORMS[source.platform].client(source)
        checkpoint = source.import_checkpoint
        skipped: list[str] = []
        try:
            while True:
                page = client.history_page(checkpoint)
                outcome = _page_write(source, page, checkpoint_field="import_checkpoint")
                skipped += outcome.skipped
                if page.checkpoint is None:
                    break
                checkpoint = page.checkpoint
                if time.monotonic() > deadline:
                    Source.objects.filter(pk=source_id).update(import_state=ImportState.QUEUED)
                    return ImportState.QUEUED
        except CredentialsRejected as exc:
            _status_set(source_id, SourceStatus.REJECTED, str(exc), import_state=ImportState.FAILED)
            return ImportState.FAILED
        except Exception as exc:
            logger.exception("history import of source %s stopped; it resumes from its checkpoint", source_id)
            _status_set(
                source_id, SourceStatus.FAILING, f"History import stopped: {exc}", import_state=ImportState.FAILED
            )
            return ImportState.FAILED
        # The sync picks up what changed while the import ran.
        _status_set(
            source_id,
            SourceStatus.CONNECTED,
            _skipped_message(skipped),
            import_state=ImportState.DONE,
            import_finished_at=timezone.now(),
            import_checkpoint={},
            synced_until=source.import_started_at,
        )
        return ImportState.DONE


def _skipped_message(skipped: list[str]) -> str:
    if not skipped:
        return ""
    shown = "\n".join(skipped[:SKIPPED_SHOWN])
    more = f"\n… and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"{len(skipped)} item(s) skipped:\n{shown}{more}"


def changes_sync_run(*, source_id: int, now: datetime | None = None) -> bool:
    """Bring in what changed since the last sync (a safety net for missed webhooks); False when it did not run."""
    with job_lock(import_lock(source_id)) as acquired:
        source = Source.objects.get(pk=source_id)
        if not acquired or source.import_state != ImportState.DONE or source.status == SourceStatus.DISCONNECTED:
            return False
        started = now or timezone.now()
        since = (source.synced_until or source.import_started_at or started) - SYNC_OVERLAP
        client = PLATFORMS[source.platform].client(source)
        checkpoint: dict = {}
        touched: set[int] = set()
        try:
            while True:
                page = client.changes_page(since, checkpoint)
                touched |= _page_write(source, page, checkpoint_field=None).touched_customer_ids
                if page.checkpoint is None:
                    break
                checkpoint = page.checkpoint
        except CredentialsRejected as exc:
            _status_set(source_id, SourceStatus.REJECTED, str(exc))
            return False
        except Exception as exc:
            logger.exception("sync of source %s failed; the next one asks for the same changes again", source_id)
            _status_set(source_id, SourceStatus.FAILING, f"Sync failed: {exc}")
            return False
        with transaction.atomic():
            _status_set(source_id, SourceStatus.CONNECTED, synced_until=started, last_sync_at=timezone.now())
            reclassify_customers_on_commit(touched)
        return True


def delivery_process(*, delivery_id: int) -> str:
    """Write one webhook delivery through the ingestion core; returns its state. A processed one is left alone."""
    delivery = SourceDelivery.objects.select_related("source").get(pk=delivery_id)
    if delivery.state != DeliveryState.PENDING:
        return delivery.state
    # Read before the row is locked: a Shopify refund asks the shop for its order, which may take seconds.
    batch, refusal = _delivery_batch(delivery)
    with transaction.atomic():
        delivery = SourceDelivery.objects.select_for_update().select_related("source").get(pk=delivery_id)
        if delivery.state != DeliveryState.PENDING:
            return delivery.state  # another worker wrote it meanwhile
        if batch is None:
            delivery.state, delivery.error = DeliveryState.FAILED, refusal
        else:
            outcome = shop_batch_ingest(source=delivery.source, batch=batch)
            delivery.state, delivery.error = DeliveryState.PROCESSED, _skipped_message(outcome.skipped)
            reclassify_customers_on_commit(outcome.touched_customer_ids)
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["state", "error", "processed_at"])
        return delivery.state


def _delivery_batch(delivery: SourceDelivery) -> tuple[ShopBatch | None, str]:
    """The delivery's records, or None and why the platform's payload is refused."""
    adapter = PLATFORMS[delivery.source.platform]
    try:
        if adapter.webhook_source_batch is not None:
            return adapter.webhook_source_batch(delivery.source, delivery.topic, delivery.payload), ""
        return adapter.webhook_batch(delivery.topic, delivery.payload), ""
    except WebhookRefused as exc:
        return None, str(exc)
