"""The CDNOW benchmark (`make bench`, SCALE=cdnow): import, reclassification, backfill, one customer, metrics and
pages on CDNOW + the demo data, in a database it recreates. `core_rows` is the part every scale run repeats (the
import and the CLV fit have SPEC §11 targets on CDNOW itself)."""

import json
import random
import time
from datetime import UTC, date, datetime

from bench.measure import Row, timed
from bench.metrics_runs import metrics_rows

END_OF_HISTORY = datetime(1998, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)  # as `reclassify --as-of` does


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE lifecycle_customer CASCADE")


def import_rows(runs: int) -> list[Row]:
    from lifecycle.cdnow import cdnow_default_path, cdnow_import

    path = cdnow_default_path()
    return [
        Row(
            "cdnow.import",
            "CDNOW import, empty database",
            "69,659 records → 23,570 customers, 67,591 orders",
            timed(lambda: cdnow_import(path=path), setup=_empty, runs=runs),
            "s",
        ),
        Row(
            "cdnow.import.again",
            "CDNOW import again (idempotent, nothing written)",
            "same",
            timed(lambda: cdnow_import(path=path), runs=runs),
            "s",
        ),
    ]


def core_rows(runs: int) -> list[Row]:
    """The CDNOW import and the CLV fit on every CDNOW customer (SPEC §11 targets)."""
    from clm.base.days import day_end
    from metrics.value import clv_fit

    rows = import_rows(runs)
    rows.append(
        Row(
            "cdnow.clv",
            "CLV fit (BG/NBD + Gamma-Gamma) on every CDNOW customer, summary query and stored predictions included",
            "23,570 buyers",
            timed(lambda: clv_fit(as_of=day_end(date(1998, 6, 30))), runs=runs),
            "s",
        )
    )
    return rows


def suite(runs: int) -> list[Row]:
    from django.core.management import call_command

    rows = import_rows(runs)
    call_command("seed_demo", verbosity=0)  # CDNOW + demo data (leads, touchpoints, feedback, spend), as issue 3 asks
    rows += lifecycle_rows(runs)
    from lifecycle.models import LifecycleModel

    for row in metrics_rows(
        model=LifecycleModel.objects.get(key="status"),
        day=date(1998, 6, 30),
        runs=runs,
        calibration_end=date(1997, 9, 30),
    ):
        row.key = f"cdnow.{row.key}"
        rows.append(row)
    rows += page_rows(as_of_day="1998-06-30")
    rows.append(ingestion_row(runs, key="cdnow.ingest", customers=[f"cdnow-{i:05d}" for i in range(1, 1001)]))
    return rows


def lifecycle_rows(runs: int) -> list[Row]:
    """Reclassification and backfill of the `status` model on CDNOW + the demo data."""
    from lifecycle.backfill import BackfillStep, model_backfill
    from lifecycle.models import Customer, CustomerStage, LifecycleModel, RunKind, StageTransition
    from lifecycle.services import customers_reclassify, model_reclassify

    model = LifecycleModel.objects.get(key="status")
    customers = Customer.objects.count()

    def forget_stages() -> None:
        CustomerStage.objects.filter(model=model).delete()
        StageTransition.objects.filter(model=model).delete()

    rows = [
        Row(
            "cdnow.full.status",
            "Full reclassification of `status` as of 1998-06-30, from an empty current state",
            f"{customers:,} customers, every one a transition",
            timed(
                lambda: model_reclassify(model=model, kind=RunKind.FULL, as_of=END_OF_HISTORY),
                setup=forget_stages,
                runs=runs,
            ),
            "s",
        )
    ]
    backfills = []

    def backfill() -> None:
        backfills.append(
            model_backfill(model=model, start=date(1997, 1, 1), end=date(1998, 6, 30), step=BackfillStep.WEEK)
        )

    seconds = timed(backfill, setup=forget_stages, runs=runs)
    rows.append(
        Row(
            "cdnow.backfill",
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
    rows.append(
        Row(
            "cdnow.single",
            "Event-driven reclassification of one customer (customers_reclassify), latency",
            f"{len(sample)} CDNOW customers, one call each",
            latencies,
            "ms",
            stat="p95",
        )
    )
    return rows


def page_rows(*, as_of_day: str) -> list[Row]:
    """Server time of the overview and funnel pages (in-process client, logged in, snapshots stored)."""
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    rows = []
    for key, name, url in [("overview", "Overview page", "/"), ("funnel", "Funnel page", "/models/status/funnel/")]:
        client.get(url, {"as_of": as_of_day})  # stores the snapshots the page reads
        latencies = []
        for _ in range(30):
            started = time.perf_counter()
            response = client.get(url, {"as_of": as_of_day})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code}")
        rows.append(
            Row(
                f"cdnow.page.{key}",
                f"{name} server time as of {as_of_day}, from snapshots (in-process client)",
                "30 requests",
                latencies,
                "ms",
                stat="p95",
            )
        )
    return rows


def ingestion_row(runs: int, *, key: str, customers: list[str], batches: int = 20, batch_size: int = 1000) -> Row:
    """POST /api/v1/orders/ through DRF's test client: `batches` requests of `batch_size` orders of `customers`."""
    from rest_framework.test import APIClient

    from clm.base.services import api_key_create

    _, api_key = api_key_create(name="bench", scopes={"write"})
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")

    def post_orders() -> None:
        run = time.perf_counter_ns()
        for b in range(batches):
            body = [
                {
                    "external_id": f"bench-{run}-{b}-{i}",
                    "customer_external_id": customers[(b * batch_size + i) % len(customers)],
                    "placed_at": "2024-05-01T10:00:00Z",
                    "amount": "19.90",
                    "channel": "email",
                }
                for i in range(batch_size)
            ]
            response = client.post("/api/v1/orders/", data=json.dumps(body), content_type="application/json")
            if response.status_code != 201:
                raise RuntimeError(f"ingestion failed: {response.status_code} {response.content[:300]!r}")

    seconds = timed(post_orders, runs=runs)
    return Row(
        key,
        f"API order ingestion, {batch_size:,}-order batches (in-process test client, no HTTP server)",
        f"{batches} batches",
        [batches * batch_size / s for s in seconds],
        "orders/s",
    )
