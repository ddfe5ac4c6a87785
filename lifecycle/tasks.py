import logging
import os
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery import group, shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction

from lifecycle.models import ClassificationChunk, ClassificationRun, LifecycleModel, RunKind, RunStatus
from lifecycle.services import (
    classification_chunk_execute,
    classification_run_complete_if_done,
    classification_run_fail,
    classification_run_plan,
    classification_run_start,
    customers_reclassify,
    runs_sweep,
)

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=3)
def reclassify_customers(self, customer_ids: list[int]) -> None:
    """After an ingestion touched these customers."""
    try:
        customers_reclassify(customer_ids=customer_ids)
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=5) from exc


@shared_task(bind=True, max_retries=3)
def reclassify_model(self, model_id: int, kind: str = RunKind.FULL, as_of: str | None = None) -> int | None:
    """Start a run over all customers and hand its chunks to the workers; returns the run id."""
    model = LifecycleModel.objects.get(pk=model_id)
    try:
        run = classification_run_start(
            model=model, kind=RunKind(kind), as_of=datetime.fromisoformat(as_of) if as_of else None
        )
    except IntegrityError:
        logger.warning("periodic run of model %s skipped: the previous one is still running", model.key)
        return None
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=10) from exc
    classification_run_dispatch(run=run)
    return run.pk


@shared_task(bind=True, max_retries=3)
def execute_classification_run(self, run_id: int) -> None:
    """Execute a run created beforehand (so that its id could be answered to an API client)."""
    run = ClassificationRun.objects.select_related("model").get(pk=run_id)
    if run.status != RunStatus.RUNNING or run.chunks.exists():
        return  # already dispatched: a redelivered message must not run it twice
    classification_run_dispatch(run=run)


def classification_run_dispatch(*, run: ClassificationRun) -> None:
    """Cut the run into chunks and send them as a Celery group: each worker process takes chunks, the chunk that
    finishes last completes the run (no chord: nothing waits on a result backend, and a redelivered chunk is
    harmless)."""
    try:
        chunks = classification_run_plan(run=run)
    except Exception as exc:
        classification_run_fail(run=run, error=f"{type(exc).__name__}: {exc}")
        raise
    if chunks:
        group(classify_chunk.si(chunk.pk) for chunk in chunks).apply_async()


@shared_task(bind=True, max_retries=3)
def classify_chunk(self, chunk_id: int) -> None:
    """One chunk, one transaction (lifecycle.services.classification_chunk_execute).

    acks_late with reject_on_worker_lost (settings): a worker killed mid-chunk hands the message back and the
    chunk's transaction is rolled back; the attempts counted on the chunk bound the redeliveries.
    """
    chunk = ClassificationChunk.objects.select_related("run__model").get(pk=chunk_id)
    try:
        classification_chunk_execute(chunk=chunk, worker=f"{self.request.hostname} pid {os.getpid()}")
    except OperationalError as exc:
        if self.request.retries >= self.max_retries:
            classification_run_fail(run=chunk.run, error=f"chunk {chunk.first_id}..{chunk.last_id}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=10) from exc
    except Exception as exc:
        logger.exception("chunk %s of classification run %s failed", chunk.pk, chunk.run_id)
        classification_run_fail(run=chunk.run, error=f"{type(exc).__name__}: {exc}")
        raise
    classification_run_complete_if_done(run=chunk.run)


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
    """Periodic pass: time alone moves customers (e.g. to inactive after 180 days without an order), and changes
    whose event-driven task was lost wait in the outbox."""
    for model_id in LifecycleModel.objects.filter(active=True).values_list("pk", flat=True):
        reclassify_model.delay(model_id, RunKind.PERIODIC)


@shared_task(ignore_result=True)
def sweep_stale_runs() -> None:
    """Runs still "running" past CLM_RUN_TIME_LIMIT are failed; runs over all customers start again."""
    for run in runs_sweep(older_than=timedelta(seconds=settings.CLM_RUN_TIME_LIMIT)):
        logger.error("classification run %s of model %s timed out; marked failed", run.pk, run.model.key)
        if run.kind in (RunKind.FULL, RunKind.PERIODIC, RunKind.RULE_CHANGE):
            reclassify_model.delay(run.model_id, run.kind)


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
