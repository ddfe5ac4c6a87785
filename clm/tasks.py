from celery import shared_task

from clm.base.idempotency import idempotency_keys_expire
from clm.base.services import heartbeat_record
from clm.demo.history import demo_history_chain


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    heartbeat_record(name="worker", hostname=self.request.hostname or "")


@shared_task(ignore_result=True)
def demo_history() -> None:
    """The first run's follow-up (clm.demo.history.demo_history_chain), started by a one-off beat entry."""
    demo_history_chain().delay()


@shared_task(ignore_result=True)
def expire_idempotency_keys() -> None:
    """Idempotency keys are kept 24 hours (clm.base.idempotency.KEY_TTL); beat runs this hourly."""
    idempotency_keys_expire()
