"""The activation jobs: thin wrappers over campaigns.activation.sending."""

from celery import shared_task
from django.utils import timezone

from campaigns.activation.sending import deliveries_send_due, next_due_in

# A retry due sooner than the beat's next sweep gets a task of its own at its time.
SWEEP_SECONDS = 60


@shared_task(acks_late=True)
def deliveries_send() -> int:
    delivered = deliveries_send_due()
    wait = next_due_in(timezone.now())
    if wait is not None and wait < SWEEP_SECONDS:
        deliveries_send.apply_async(countdown=wait)
    return delivered
