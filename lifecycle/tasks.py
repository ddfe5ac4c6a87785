import logging
from collections.abc import Iterable
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction

from lifecycle.models import ClassificationRun, LifecycleModel, RunKind, RunStatus
from lifecycle.services import (
    classification_run_execute,
    classification_run_fail,
    customers_reclassify,
    model_reclassify,
)

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=3)
def reclassify_customers(self, customer_ids: list[int]) -> None:
    """After an ingestion touched these customers."""
    try:
        customers_reclassify(customer_ids=customer_ids)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=5) from exc


@shared_task(bind=True, acks_late=True, max_retries=3)
def reclassify_model(self, model_id: int, kind: str = RunKind.FULL, as_of: str | None = None) -> None:
    try:
        model_reclassify(
            model=LifecycleModel.objects.get(pk=model_id),
            kind=RunKind(kind),
            as_of=datetime.fromisoformat(as_of) if as_of else None,
        )
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=10) from exc


@shared_task(bind=True, acks_late=True, max_retries=3)
def execute_classification_run(self, run_id: int) -> None:
    """Execute a run created beforehand (so that its id could be answered to an API client)."""
    run = ClassificationRun.objects.select_related("model").get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return  # already done: a redelivered message must not run it twice
    try:
        classification_run_execute(run=run)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=10) from exc


def classification_run_enqueue(run_id: int) -> None:
    """Execute a created run on a worker once the current transaction commits; if the broker refuses it,
    the run is marked failed rather than left running forever."""

    def enqueue() -> None:
        try:
            execute_classification_run.delay(run_id)
        except Exception as exc:
            logger.exception("could not enqueue classification run %s", run_id)
            classification_run_fail(run=ClassificationRun.objects.get(pk=run_id), error=f"not enqueued: {exc}")

    transaction.on_commit(enqueue)


@shared_task(ignore_result=True)
def reclassify_active_models() -> None:
    """Periodic pass: time alone moves customers (e.g. to inactive after 180 days without an order)."""
    for model_id in LifecycleModel.objects.filter(active=True).values_list("pk", flat=True):
        reclassify_model.delay(model_id, RunKind.PERIODIC)


def reclassify_customers_on_commit(customer_ids: Iterable[int]) -> None:
    """Reclassify customers whose data changed, once the change is committed.

    Many customers at once (a large import) are cheaper as full runs. If the broker cannot take the task,
    the change is already stored and the next periodic pass classifies them; the failure is logged.
    """
    ids = sorted(customer_ids)
    if not ids:
        return

    def enqueue() -> None:
        try:
            if len(ids) > settings.CLM_CLASSIFY_CHUNK_SIZE:
                for model_id in LifecycleModel.objects.filter(active=True).values_list("pk", flat=True):
                    reclassify_model.delay(model_id, RunKind.EVENT)
            else:
                reclassify_customers.delay(ids)
        except Exception:
            logger.exception("could not enqueue reclassification of %d customers; the periodic pass will", len(ids))

    transaction.on_commit(enqueue)


@shared_task(bind=True, acks_late=True, max_retries=3, soft_time_limit=4 * 3600 - 60, time_limit=4 * 3600)
def backfill_model(self, model_id: int, start: str, end: str, step: str) -> dict:
    """Backfill a model over [start, end] (YYYY-MM-DD) at `step` (day or week); see lifecycle.backfill.

    A backfill replaces what an earlier one wrote for the range, so a redelivered or retried task is harmless.
    Its own time limits: a daily backfill over years is longer than ordinary tasks.
    """
    from lifecycle.backfill import BackfillStep, backfill_date_parse, model_backfill

    try:
        result = model_backfill(
            model=LifecycleModel.objects.get(pk=model_id),
            start=backfill_date_parse(start, "start"),
            end=backfill_date_parse(end, "end"),
            step=BackfillStep(step),
        )
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc
    return {
        "model": result.model_key,
        "steps": result.steps,
        "transitions": result.transitions,
        "replaced": result.replaced,
        "current_as_of": result.current_as_of.isoformat() if result.current_as_of else None,
    }
