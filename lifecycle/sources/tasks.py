"""The sources' jobs: thin wrappers over lifecycle.sources.sync."""

from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from lifecycle.sources.models import DeliveryState, ImportState, Source, SourceDelivery, SourceStatus
from lifecycle.sources.sync import changes_sync_run, delivery_process, history_import_run

# A delivery still pending this long after it arrived lost its task (a broker outage): the sweep runs it.
DELIVERY_GRACE = timedelta(minutes=2)


@shared_task(acks_late=True)
def source_history_import(source_id: int) -> str:
    state = history_import_run(source_id=source_id)
    if state == ImportState.QUEUED:  # the slice ran out: the next one continues from the checkpoint
        source_history_import.delay(source_id)
    return state


@shared_task(acks_late=True)
def source_changes_sync(source_id: int) -> bool:
    return changes_sync_run(source_id=source_id)


@shared_task(acks_late=True)
def source_delivery_process(delivery_id: int) -> str:
    return delivery_process(delivery_id=delivery_id)


def delivery_process_on_commit(delivery_id: int) -> None:
    """Queue the delivery once it is stored; if the broker is down the sweep picks it up."""
    transaction.on_commit(lambda: source_delivery_process.delay(delivery_id))


@shared_task
def sources_sync() -> int:
    """Beat: every connected source whose history is in asks for its changes; returns how many were queued."""
    ids = list(
        Source.objects.filter(import_state=ImportState.DONE)
        .exclude(status__in=[SourceStatus.DISCONNECTED, SourceStatus.REJECTED])
        .values_list("pk", flat=True)
    )
    for source_id in ids:
        source_changes_sync.delay(source_id)
    return len(ids)


@shared_task
def source_deliveries_sweep() -> int:
    """Beat: process the deliveries whose task was lost; returns how many."""
    stale = SourceDelivery.objects.filter(
        state=DeliveryState.PENDING, received_at__lt=timezone.now() - DELIVERY_GRACE
    ).values_list("pk", flat=True)
    count = 0
    for delivery_id in stale.iterator():
        delivery_process(delivery_id=delivery_id)
        count += 1
    return count


# Reading a 1 GB export takes longer than the default task limit: the uploads' jobs get hours.
UPLOAD_TIME_LIMIT = 4 * 3600


@shared_task(acks_late=True, soft_time_limit=UPLOAD_TIME_LIMIT, time_limit=UPLOAD_TIME_LIMIT + 300)
def source_upload_check(upload_id: int) -> str:
    from lifecycle.sources.uploads import upload_check_run  # uploads queues these tasks: imported when they run

    return upload_check_run(upload_id=upload_id)


@shared_task(acks_late=True, soft_time_limit=UPLOAD_TIME_LIMIT, time_limit=UPLOAD_TIME_LIMIT + 300)
def source_upload_import(upload_id: int) -> str:
    from lifecycle.sources.uploads import upload_import_run

    return upload_import_run(upload_id=upload_id)


@shared_task
def source_uploads_expire() -> int:
    """Beat: delete the uploads nobody imported within CLM_UPLOAD_KEEP_DAYS; returns how many."""
    from lifecycle.sources.uploads import uploads_expire

    return uploads_expire(now=timezone.now())
