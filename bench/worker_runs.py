"""A full pass spread over Celery worker processes: the same run dispatched as chunks (lifecycle.tasks) to one worker
process, then to two, on the benchmark's database and broker. Each chunk records the worker that executed it, so the
row shows how the chunks were shared; the result is compared with the in-process pass."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import F

from bench.http_runs import database_url
from bench.measure import Row

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 3600


@contextmanager
def workers(count: int, *, log_dir: Path) -> Iterator[list[subprocess.Popen]]:
    """`count` Celery worker processes (prefork, one child each), ready to take tasks; stopped afterwards."""
    from clm.celery import app

    app.control.purge()
    env = {**os.environ, "DATABASE_URL": database_url()}
    log_dir.mkdir(parents=True, exist_ok=True)
    processes, logs = [], []
    for number in range(1, count + 1):
        log = log_dir / f"bench-worker-{number}.log"
        log.write_text("")
        command = [sys.executable, "-m", "celery", "-A", "clm", "worker", f"--hostname=bench{number}@%h"]
        command += ["--pool=prefork", "--concurrency=1", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
        with log.open("a") as handle:
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
            )
        logs.append(log)
    try:
        deadline = time.monotonic() + 120
        while not all(" ready." in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                tails = "\n".join(log.read_text()[-2000:] for log in logs)
                raise RuntimeError(f"a benchmark worker did not start:\n{tails}")
            time.sleep(0.2)
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _dispatched_run_seconds(model, *, as_of: datetime) -> tuple[float, object]:
    """Start a full run, hand its chunks to the workers and wait until the last chunk completes it."""
    from lifecycle.models import ClassificationRun, RunKind, RunStatus
    from lifecycle.services import classification_run_start
    from lifecycle.tasks import classification_run_dispatch

    started = time.perf_counter()
    run = classification_run_start(model=model, kind=RunKind.FULL, as_of=as_of)
    classification_run_dispatch(run=run)
    deadline = time.monotonic() + RUN_TIMEOUT
    while ClassificationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run.pk} still running after {RUN_TIMEOUT} s")
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    if run.status != RunStatus.COMPLETED:
        raise RuntimeError(f"run {run.pk} ended {run.status}: {run.error}")
    return seconds, run


def _differences_from_rules(model, *, as_of: datetime) -> int:
    """Customers whose current stage differs from the model's rules evaluated as of `as_of` in one query (the
    classification's own SELECT, outside any chunk)."""
    from bench.lifecycle_runs import stage_differences
    from lifecycle.rules import classification_queryset

    expected = classification_queryset(model, as_of).values(customer_id=F("id"), stage_id=F("target_stage_id"))
    sql, params = expected.query.sql_with_params()
    return stage_differences(model, sql, params)


def workers_rows(model, *, as_of: datetime, runs: int, counts: tuple[int, ...] = (1, 2)) -> list[Row]:
    """The full pass of `model` executed by 1 and then 2 worker processes: from an empty current state (every
    customer written) and converged (the same pass again: read-mostly, nothing written)."""
    from bench.lifecycle_runs import stage_tables_analyze, stage_tables_clear

    rows: list[Row] = []
    for state, setup in (("empty", stage_tables_clear), ("converged", stage_tables_analyze)):
        by_count: dict[int, Row] = {}
        for count in counts:
            seconds, shares = [], ""
            with workers(count, log_dir=Path(settings.DATA_DIR)):
                for _ in range(runs):
                    setup()
                    elapsed, run = _dispatched_run_seconds(model, as_of=as_of)
                    seconds.append(elapsed)
                    per_worker: dict[str, int] = {}
                    for worker in run.chunks.values_list("worker", flat=True):
                        per_worker[worker] = per_worker.get(worker, 0) + 1
                    shares = " + ".join(str(chunks) for chunks in sorted(per_worker.values(), reverse=True))
            differences = _differences_from_rules(model, as_of=as_of)
            same = "yes" if differences == 0 else f"NO ({differences:,} customers differ)"
            row = Row(
                f"workers.{model.key}.{state}.{count}",
                f"Full reclassification of `{model.key}` through Celery, "
                + ("from an empty current state" if state == "empty" else "converged (nothing changes)")
                + f", {count} worker process{'es' if count > 1 else ''}",
                f"{run.customers_evaluated:,} customers in {run.chunks.count()} chunks of "
                f"{settings.CLM_CLASSIFY_CHUNK_SIZE:,}, {run.transitions:,} transitions; chunks per worker {shares}; "
                f"result = the rules evaluated in one query: {same}",
                seconds,
                "s",
            )
            if count > 1 and 1 in by_count:
                row.note = f"{by_count[1].median / row.median:.2f}× the speed of one worker"
            by_count[count] = row
            rows.append(row)
    return rows
