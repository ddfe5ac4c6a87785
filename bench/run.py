"""Benchmarks: run with `make bench`; appends a table to docs/BENCHMARKS.md.

Runs against PostgreSQL (BENCH_DATABASE_URL, default a `clm_bench` database on 127.0.0.1 that it recreates),
never against the development database. Each figure is the median of several runs, with min and max.
"""

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clm_bench")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

sys.path.insert(0, str(ROOT))
os.environ.update({"DATABASE_URL": DATABASE_URL, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "clm.settings"})


def recreate_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def timed(setup: Callable[[], None], work: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(RUNS):
        setup()
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient

    from clm.services import api_key_create
    from lifecycle.cdnow import cdnow_default_path, cdnow_import

    call_command("migrate", verbosity=0)
    path = cdnow_default_path()

    def empty() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE lifecycle_customer CASCADE")

    rows: list[tuple[str, str, list[float], str]] = []
    rows.append(
        (
            "CDNOW import, empty database",
            "69,659 records → 23,570 customers, 67,591 orders",
            timed(empty, lambda: cdnow_import(path=path)),
            "s",
        )
    )
    rows.append(
        (
            "CDNOW import again (idempotent, nothing written)",
            "same",
            timed(lambda: None, lambda: cdnow_import(path=path)),
            "s",
        )
    )

    call_command("seed_demo", verbosity=0)  # CDNOW + demo data (leads, touchpoints, feedback, spend), as issue 3 asks
    rows += lifecycle_rows()
    rows += metrics_rows()

    _, key = api_key_create(name="bench", scopes={"write"})
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    customers = [f"cdnow-{i:05d}" for i in range(1, 1001)]
    batches = 20

    def post_orders() -> None:
        run = time.perf_counter_ns()
        for b in range(batches):
            body = [
                {
                    "external_id": f"bench-{run}-{b}-{i}",
                    "customer_external_id": customers[i],
                    "placed_at": "2024-05-01T10:00:00Z",
                    "amount": "19.90",
                    "channel": "email",
                }
                for i in range(1000)
            ]
            response = client.post("/api/v1/orders/", data=json.dumps(body), content_type="application/json")
            if response.status_code != 201:
                raise RuntimeError(f"ingestion failed: {response.status_code} {response.content[:300]!r}")

    seconds = timed(lambda: None, post_orders)
    rows.append(
        (
            "API order ingestion, 1,000-order batches (in-process test client, no HTTP server)",
            f"{batches} batches",
            [batches * 1000 / s for s in seconds],
            "orders/s",
        )
    )
    write_report(rows)


def lifecycle_rows() -> list[tuple[str, str, list[float], str]]:
    """Reclassification and backfill of the `status` model on CDNOW + the demo data (SPEC §11)."""
    from lifecycle.backfill import BackfillStep, model_backfill
    from lifecycle.models import Customer, CustomerStage, LifecycleModel, RunKind, StageTransition
    from lifecycle.services import customers_reclassify, model_reclassify

    model = LifecycleModel.objects.get(key="status")
    customers = Customer.objects.count()

    def forget_stages() -> None:
        CustomerStage.objects.filter(model=model).delete()
        StageTransition.objects.filter(model=model).delete()

    end_of_history = datetime(1998, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)  # as `reclassify --as-of` does
    rows = [
        (
            "Full reclassification of `status` as of 1998-06-30, from an empty current state",
            f"{customers:,} customers, every one a transition",
            timed(forget_stages, lambda: model_reclassify(model=model, kind=RunKind.FULL, as_of=end_of_history)),
            "s",
        )
    ]
    backfills = []

    def backfill() -> None:
        backfills.append(
            model_backfill(model=model, start=date(1997, 1, 1), end=date(1998, 6, 30), step=BackfillStep.WEEK)
        )

    seconds = timed(forget_stages, backfill)
    rows.append(
        (
            "Weekly CDNOW backfill of `status` 1997-01-01..1998-06-30, from an empty log",
            f"{backfills[-1].steps} steps × {customers:,} customers → {backfills[-1].transitions:,} transitions",
            seconds,
            "s",
        )
    )

    # Event-driven: one customer's data changed; reclassify them in every active model, as of now.
    sample = random.Random(11).sample(list(Customer.objects.values_list("pk", flat=True)), 200)  # noqa: S311
    latencies = []
    for customer_id in sample:
        started = time.perf_counter()
        customers_reclassify(customer_ids=[customer_id])
        latencies.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    rows.append(
        (
            "Event-driven reclassification of one customer (customers_reclassify), latency",
            f"{len(sample)} CDNOW customers, one call each (median = p50; p95 {p95:.0f} ms)",
            latencies,
            "ms",
        )
    )
    return rows


def metrics_rows() -> list[tuple[str, str, list[float], str]]:
    """The metrics jobs on CDNOW + demo data, with the `status` history the weekly backfill left (issue 4)."""
    from lifecycle.models import Customer, LifecycleModel, StageTransition
    from metrics.filters import MetricFilters
    from metrics.kinds import day_end
    from metrics.rfm import rfm_breakpoints_store
    from metrics.services import default_snapshot_requests, metric_snapshot_store, pipeline_snapshots_compute
    from metrics.value import clv_accuracy, clv_fit

    model = LifecycleModel.objects.get(key="status")
    as_of = day_end(date(1998, 6, 30))
    data = (
        f"{Customer.objects.count():,} customers, {StageTransition.objects.filter(model=model).count():,} transitions"
    )
    rows = [
        (
            "Daily pipeline series of `status`, rebuilt from the whole log",
            data,
            timed(lambda: None, lambda: pipeline_snapshots_compute(model=model, until=date(1998, 6, 30))),
            "s",
        )
    ]
    filters = MetricFilters(as_of=as_of)
    for request in default_snapshot_requests(as_of=as_of):
        if request.model not in (None, model):
            continue
        rows.append(
            (
                f"Metric snapshot `{request.kind}` as of 1998-06-30"
                + "".join(f", {name} {value}" for name, value in request.params.items()),
                data,
                timed(
                    lambda: None,
                    lambda request=request: metric_snapshot_store(
                        kind=request.kind, model=request.model, filters=filters, params=request.params
                    ),
                ),
                "s",
            )
        )
    buyers = Customer.objects.filter(orders__isnull=False).distinct().count()
    rows.append(
        (
            "RFM breakpoints as of 1998-06-30",
            f"{buyers:,} buyers",
            timed(lambda: None, lambda: rfm_breakpoints_store(as_of=as_of)),
            "s",
        )
    )
    rows.append(
        (
            "CLV fit (BG/NBD + Gamma-Gamma) on every CDNOW customer, summary query and stored predictions included",
            f"{buyers:,} buyers",
            timed(lambda: None, lambda: clv_fit(as_of=as_of)),
            "s",
        )
    )
    rows.append(
        (
            "CLV accuracy, calibration to 1997-09-30, holdout to 1998-06-30",
            f"{buyers:,} buyers",
            timed(lambda: None, lambda: clv_accuracy(calibration_end=day_end(date(1997, 9, 30)), holdout_end=as_of)),
            "s",
        )
    )
    rows += page_rows(as_of_day="1998-06-30")
    return rows


def page_rows(*, as_of_day: str) -> list[tuple[str, str, list[float], str]]:
    """Server time of the overview and funnel pages (in-process client, logged in, snapshots stored)."""
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    rows = []
    for name, url in [("Overview page", "/"), ("Funnel page", "/models/status/funnel/")]:
        client.get(url, {"as_of": as_of_day})  # stores the snapshots the page reads
        latencies = []
        for _ in range(30):
            started = time.perf_counter()
            response = client.get(url, {"as_of": as_of_day})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code}")
        p95 = statistics.quantiles(latencies, n=20)[-1]
        rows.append(
            (
                f"{name} server time as of {as_of_day}, from snapshots",
                f"30 requests (p95 {p95:.0f} ms)",
                latencies,
                "ms",
            )
        )
    return rows


def write_report(rows: list[tuple[str, str, list[float], str]]) -> None:
    import django
    import psycopg

    with psycopg.connect(DATABASE_URL) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout  # noqa: S603,S607 - fixed command
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — commit {commit.strip() or 'uncommitted'}\n",
        f"Machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, {platform.platform()}; Python "
        f"{platform.python_version()}, Django {django.get_version()}, PostgreSQL {pg_version}. "
        f"Median of {RUNS} runs (min – max).\n",
        "| measurement | data | median | min – max |",
        "|---|---|---|---|",
    ]
    for name, size, values, unit in rows:
        fmt = {"orders/s": "{:,.0f}", "ms": "{:.1f}"}.get(unit, "{:.2f}")
        low, high = min(values), max(values)
        lines.append(
            f"| {name} | {size} | {fmt.format(statistics.median(values))} {unit} | "
            f"{fmt.format(low)} – {fmt.format(high)} |"
        )
    report = ROOT / "docs" / "BENCHMARKS.md"
    if not report.exists():
        report.write_text("# Benchmarks\n\nWritten by `make bench` (bench/run.py); newest last. Targets: SPEC §11.\n")
    with report.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
