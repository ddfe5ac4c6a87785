"""The benchmark at 10k / 100k / 1M generated customers: the parts, in the order they run.

Each part returns rows; run.py stores them as they come, so a long run that fails late keeps what it measured and
`--parts` can repeat one part on the same data.
"""

import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench import explain, http_runs, lifecycle_runs, load, worker_runs
from bench.generate import Spec
from bench.measure import Row
from bench.metrics_runs import metrics_rows, snapshot_job_row

ROOT = Path(__file__).resolve().parent.parent
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
HISTORY_MONTHS = 12
# The covering index for the GROUP BY of the orders (status included: only completed orders count).
COVERING_INDEX = "bench_order_customer_covering"
COVERING_COLUMNS = "(customer_id) INCLUDE (placed_at, amount, status)"


class Suite:
    def __init__(
        self,
        *,
        scale: str,
        seed: int,
        runs: int,
        regenerate: bool = False,
        keep_indexes: bool = False,
        queries: Path = ROOT / "docs" / "QUERIES.md",
    ) -> None:
        self.scale, self.seed, self.runs, self.queries = scale, seed, runs, queries
        self.regenerate, self.keep_indexes = regenerate, keep_indexes
        self.as_of = timezone.now()
        self.dataset: load.Dataset | None = None
        self.models: dict = {}
        self.notes: list[str] = []
        self.converged_by_floor: set[str] = set()

    # --- helpers ---------------------------------------------------------------------------------------------

    def parts(self) -> dict[str, Callable[[], list[Row]]]:
        return {
            "full": self.part_full,
            "added": self.part_added,
            "floor": self.part_floor,
            "orm": self.part_orm,
            "workers": self.part_workers,
            "history": self.part_history,
            "single": self.part_single,
            "periodic": self.part_periodic,
            "metrics": self.part_metrics,
            "http": self.part_http,
            "explain": self.part_explain,
            "covering": self.part_covering,
        }

    def prepare(self) -> list[Row]:
        """The data (generated and loaded unless the database holds this scale and seed already) and the models."""
        spec = Spec(customers=SCALES[self.scale], seed=self.seed, end=timezone.now().date())
        rows = []
        dataset = load.dataset_get()
        if self.regenerate or not load.dataset_matches(dataset, spec):
            print(f"Generating and loading {spec.customers:,} customers (seed {spec.seed}) ...", flush=True)
            started = time.perf_counter()
            dataset = load.dataset_load(scale=self.scale, spec=spec, keep_indexes=self.keep_indexes)
            seconds = time.perf_counter() - started
            phases = ", ".join(f"{name.replace('_', ' ')} {value:.1f} s" for name, value in dataset.seconds.items())
            how = (
                "indexes kept during COPY"
                if self.keep_indexes
                else "secondary indexes and constraints dropped, COPY, rebuilt"
            )
            rows.append(
                Row(
                    "load",
                    f"Data generation and load ({how}), VACUUM ANALYZE included",
                    f"{dataset.customers:,} customers, {dataset.orders:,} orders, {dataset.touchpoints:,} touchpoints, "
                    f"{dataset.feedback:,} feedback; {phases}",
                    [seconds],
                    "s",
                )
            )
        else:
            print(
                f"Reusing the loaded data ({dataset.customers:,} customers, seed {dataset.seed}, "
                f"generated {dataset.generated_at:%Y-%m-%d %H:%M})",
                flush=True,
            )
            load.dataset_reset_live(dataset)
        self.dataset = dataset
        self.models = lifecycle_runs.models_install()
        return rows

    def preamble(self) -> list[str]:
        d = self.dataset
        return [
            f"Scale {self.scale}: {d.customers:,} customers, {d.orders:,} orders, {d.touchpoints:,} touchpoints, "
            f"{d.feedback:,} feedback, generated (seed {d.seed}, {d.generated_at:%Y-%m-%d}) for a history ending "
            f"{d.end}, shaped like CDNOW ({d.details['shape']}); pace {d.details['pace']:.1f}, see BENCHMARKING.md.",
        ]

    # --- parts -------------------------------------------------------------------------------------------------

    def part_full(self) -> list[Row]:
        return lifecycle_runs.full_rows(
            self.models, as_of=self.as_of, runs=self.runs, converged_by_floor=self.converged_by_floor
        )

    def part_added(self) -> list[Row]:
        return [
            lifecycle_runs.added_model_row(self.models["ecommerce"], classified=self.models["status"], as_of=self.as_of)
        ]

    def part_floor(self) -> list[Row]:
        return lifecycle_runs.floor_rows(
            self.models, as_of=self.as_of, runs=self.runs, converged_by_floor=self.converged_by_floor
        )

    def part_orm(self) -> list[Row]:
        active = {key: self.models[key] for key in lifecycle_runs.ACTIVE_KEYS}
        return lifecycle_runs.orm_rows(active, as_of=self.as_of, runs=self.runs)

    def part_workers(self) -> list[Row]:
        return worker_runs.workers_rows(self.models["status"], as_of=self.as_of, runs=self.runs)

    def part_history(self) -> list[Row]:
        now = timezone.now()
        rows = [lifecycle_runs.history_build(self.models["status"], months=HISTORY_MONTHS, as_of=now)]
        # `ecommerce` classified as of now too (the floor statement: the app's first pass of an added model is
        # the slow case measured by the `full` part).
        lifecycle_runs.floor_converge(self.models["ecommerce"], now)
        return rows

    def part_single(self) -> list[Row]:
        return [lifecycle_runs.single_customer_row()]

    def part_periodic(self) -> list[Row]:
        active = {key: self.models[key] for key in lifecycle_runs.ACTIVE_KEYS}
        return lifecycle_runs.periodic_rows(active, runs=self.runs)

    def part_metrics(self) -> list[Row]:
        rows = metrics_rows(model=self.models["status"], day=timezone.now().date(), runs=self.runs)
        rows.insert(len(rows) - 3, snapshot_job_row(rows))
        return rows

    def part_http(self) -> list[Row]:
        from metrics.services import metric_snapshots_compute

        metric_snapshots_compute()  # the pages read today's snapshots, as after the hourly job
        log = Path(settings.DATA_DIR) / "bench-gunicorn.log"
        rows = []
        workers = 3
        with http_runs.gunicorn(workers=workers, log=log) as server:
            rows.append(http_runs.ingestion_row(server, workers=workers, clients=4, batches=24, runs=self.runs))
            pages = {
                "overview": ("Overview page", "/"),
                "funnel": ("Funnel page", "/models/status/funnel/"),
            }
            rows += http_runs.page_rows(server, workers=workers, pages=pages, clients=4, requests=25)
        with http_runs.gunicorn(workers=1, log=log) as server:
            rows += http_runs.export_rows(
                server,
                path="/api/v1/models/ecommerce/funnel/customers/?stage=reach&export=csv",
                runs=self.runs,
                what="every customer (the `ecommerce` funnel's first step: everyone classified)",
            )
        self.notes.append(_broker_note())
        return rows

    def part_explain(self) -> list[Row]:
        items = explain_items(self.models)
        explain.queries_write(
            self.queries,
            heading=f"At {self.dataset.customers:,} customers, {self.dataset.orders:,} orders, "
            f"{self.dataset.touchpoints:,} touchpoints",
            items=items,
        )
        return []

    def part_covering(self) -> list[Row]:
        """The issue's covering index on the orders, created for this experiment and dropped after it: the converged
        full pass and floor of `status` again, and the plan of one chunk, with it."""
        from lifecycle.models import RunKind
        from lifecycle.services import model_reclassify

        model = self.models["status"]
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(f"CREATE INDEX {COVERING_INDEX} ON lifecycle_order {COVERING_COLUMNS}")
            seconds = time.perf_counter() - started
            cursor.execute("VACUUM ANALYZE lifecycle_order")  # index-only scans need the visibility map
            cursor.execute(f"SELECT pg_size_pretty(pg_relation_size('{COVERING_INDEX}'))")
            size = cursor.fetchone()[0]
        try:
            model_reclassify(model=model, kind=RunKind.FULL, as_of=self.as_of)  # converged as of the runs' as_of
            rows = [
                row
                for row in lifecycle_runs.full_rows({"status": model}, as_of=self.as_of, runs=self.runs)
                + lifecycle_runs.floor_rows({"status": model}, as_of=self.as_of, runs=self.runs)
                if row.key.endswith(".converged")
            ]
            first = customer_first_id()
            (sql,) = _chunk_classification(model, first, first + settings.CLM_CLASSIFY_CHUNK_SIZE - 1)
            item = explain.explained(
                f"Classification of one chunk of `status`, with `{COVERING_INDEX}`",
                f"The same statement as above with the experiment's index on lifecycle_order {COVERING_COLUMNS}.",
                sql,
            )
            explain.queries_append(self.queries, items=[item])
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {COVERING_INDEX}")
        for row in rows:
            row.key = f"covering.{row.key}"
            row.name += f", with a covering index on lifecycle_order {COVERING_COLUMNS}"
        return [
            Row(
                "covering.create",
                f"Experiment: CREATE INDEX on lifecycle_order {COVERING_COLUMNS}",
                f"{self.dataset.orders:,} orders; index size {size}",
                [seconds],
                "s",
            ),
            *rows,
        ]


def customer_first_id() -> int:
    from lifecycle.models import Customer

    return Customer.objects.order_by("pk").values_list("pk", flat=True)[0]


def _broker_note() -> str:
    broker = settings.CELERY_BROKER_URL
    return (
        f"Ingestion enqueues the reclassification of the touched customers after each commit; no worker ran, so the "
        f"messages waited in the broker ({broker.split('@')[-1]}) and were purged afterwards. The outbox rows "
        "(customers_mark_changed) are written in the ingestion transaction and included in the figure."
    )


# --- EXPLAIN --------------------------------------------------------------------------------------------------


def _chunk_classification(model, first: int, last: int) -> list[str]:
    from lifecycle.models import RunKind
    from lifecycle.services import classification_run_start, customers_classify

    with transaction.atomic():
        run = classification_run_start(model=model, kind=RunKind.FULL)
        sql = explain.captured(
            lambda: customers_classify(model=model, run=run, id_range=(first, last)),
            pick=lambda s: s.lstrip().upper().startswith("INSERT"),
        )
        transaction.set_rollback(True)
    return sql


def explain_items(models: dict) -> list[explain.Explained]:
    from django.contrib.auth.models import User
    from django.test import Client

    from lifecycle.models import Customer
    from lifecycle.services import customers_reclassify
    from metrics.filters import MetricFilters
    from metrics.funnel import funnel_compute, funnel_customers

    size = settings.CLM_CLASSIFY_CHUNK_SIZE
    first = customer_first_id()
    items = []
    for key in ("status", "ecommerce"):
        (sql,) = _chunk_classification(models[key], first, first + size - 1)
        items.append(
            explain.explained(
                f"Classification of one chunk of `{key}` ({size:,} customer ids)",
                "customers_classify: the compiled rules' SELECT inside the INSERT of the transitions (converged "
                "state: nothing differs, so the cost is the SELECT).",
                sql,
            )
        )
    customer = random.Random(3).choice(list(Customer.objects.values_list("pk", flat=True)[:100_000]))  # noqa: S311
    with transaction.atomic():
        statements = explain.captured(
            lambda: customers_reclassify(customer_ids=[customer]),
            pick=lambda s: s.lstrip().upper().startswith("INSERT") and "stagetransition" in s,
            top=2,
        )
        transaction.set_rollback(True)
    for sql in statements:
        items.append(
            explain.explained(
                "Classification of one customer (event-driven)",
                "customers_reclassify([id]) — the same compiled query filtered by the customer's id.",
                sql,
            )
        )
    filters = MetricFilters(as_of=timezone.now())
    (sql,) = explain.captured(lambda: funnel_compute(model=models["status"], filters=filters))
    items.append(
        explain.explained(
            "Funnel of `status` (metrics.funnel.funnel_compute)",
            "The funnel snapshot's aggregate over the transition log.",
            sql,
        )
    )
    from metrics.filters import period_default
    from metrics.services import metric_snapshot_store

    start, end = period_default(filters.as_of)
    for sql in explain.captured(
        lambda: metric_snapshot_store(
            kind="rates", model=models["status"], filters=filters, params={"start": start, "end": end}
        ),
        top=2,
    ):
        items.append(
            explain.explained(
                "Rates snapshot of `status` (metrics.rates), slowest statements",
                "The hourly snapshot job's `rates` of the last 30 days.",
                sql,
            )
        )
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    for title, path, top in (
        ("Overview page", "/", 2),
        ("Funnel page", "/models/status/funnel/", 1),
        ("Stage page's customer list (`former`, page 1 and its count)", "/models/status/stages/former/", 2),
    ):
        client.get(path)  # snapshots stored first, as the page usually finds them
        for sql in explain.captured(lambda path=path: client.get(path), top=top):
            items.append(explain.explained(title, f"The slowest statements of GET {path} (snapshots stored).", sql))
    export = funnel_customers(model=models["ecommerce"], filters=filters, stage_key="reach", outcome="reached")
    sql, params = export.values_list("pk", "external_id").order_by("pk").query.sql_with_params()
    items.append(
        explain.explained(
            "CSV export: every customer of the `ecommerce` funnel's first step",
            "The query the export streams with a server-side cursor.",
            connection.ops.compose_sql(sql, params),
        )
    )
    items += _incremental_items(models["status"])
    return items


def _incremental_items(model) -> list[explain.Explained]:
    """The candidate queries of an incremental periodic pass (one hour after a full pass)."""
    from lifecycle.models import RunKind
    from lifecycle.services import classification_run_plan, classification_run_start, model_reclassify

    model_reclassify(model=model, kind=RunKind.FULL, as_of=timezone.now() - timedelta(hours=1))
    with transaction.atomic():
        run = classification_run_start(model=model, kind=RunKind.PERIODIC)
        statements = explain.captured(
            lambda: classification_run_plan(run=run), pick=lambda sql: "changedcustomer" in sql, top=4
        )
        transaction.set_rollback(True)
    return [
        explain.explained(
            "Incremental periodic pass: finding the candidates",
            "classification_run_plan of a periodic run one hour after a full one: the time-crossing customers put "
            "into the outbox and the chunk ranges of the outbox (slowest statements first).",
            sql,
        )
        for sql in statements
    ]
