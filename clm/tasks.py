from celery import shared_task

from clm.services import heartbeat_record


@shared_task(bind=True, ignore_result=True)
def heartbeat(self) -> None:
    heartbeat_record(name="worker", hostname=self.request.hostname or "")
