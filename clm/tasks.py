from celery import shared_task

from clm.idempotency import idempotency_keys_expire
from clm.services import demo_history_chain, heartbeat_record


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    heartbeat_record(name="worker", hostname=self.request.hostname or "")


@shared_task(ignore_result=True)
def demo_history() -> None:
    """The first run's follow-up (clm.services.demo_history_chain), started by a one-off beat entry."""
    demo_history_chain().delay()


@shared_task(ignore_result=True)
def expire_idempotency_keys() -> None:
    """Idempotency keys are kept 24 hours (clm.idempotency.KEY_TTL); beat runs this hourly."""
    idempotency_keys_expire()
