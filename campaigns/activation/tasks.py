"""The activation jobs: thin wrappers over campaigns.activation.sending."""

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from campaigns.activation.sending import deliveries_send_due, next_due_in

logger = logging.getLogger(__name__)

# A retry due sooner than the beat's next sweep gets a task of its own at its time.
SWEEP_SECONDS = 60


@shared_task(acks_late=True)
def deliveries_send() -> int:
    delivered = deliveries_send_due()
    wait = next_due_in(timezone.now())
    if wait is not None and wait < SWEEP_SECONDS:
        deliveries_send.apply_async(countdown=wait)
    return delivered


def deliveries_send_on_commit() -> None:
    """Send what the current transaction queues, once it commits. With the broker down nothing fails: the deliveries
    are stored, and the beat's sweep (every SWEEP_SECONDS) sends them when it is back."""

    def enqueue() -> None:
        try:
            deliveries_send.delay()
        except Exception:
            logger.warning("could not queue the sending of deliveries; the sweep sends them", exc_info=True)

    transaction.on_commit(enqueue)
