"""The benchmark code runs end to end at a tiny scale, so that it does not rot between benchmark runs.

Benchmarks are not tests: nothing here checks a duration. It checks that the generator is deterministic and shaped
as documented, that the COPY loader fills the real schema and restores its indexes, that every measurement runs
and returns sane numbers (the floor and the ORM loop agree with the app), and that the report renders.
"""

import os
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from bench import generate, load
from bench.generate import Spec
from bench.measure import Row

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("CI", "").lower() != "true" and not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the benchmark loads with PostgreSQL COPY",
    ),
]

END = date(2026, 11, 1)


def _tables(spec: Spec) -> list[dict[str, dict[str, np.ndarray]]]:
    pop = generate.population(spec)
    created = datetime(2026, 11, 1, tzinfo=timezone.get_fixed_timezone(0))
    return [{table.name: table.columns for table in tables} for tables in generate.chunks(pop, created)]


def _same(a: list, b: list) -> bool:
    return all(
        np.array_equal(x[name][column], y[name][column])
        for x, y in zip(a, b, strict=True)
        for name in x
        for column in x[name]
    )


def test_the_generator_is_deterministic_by_seed():
    first = _tables(Spec(customers=300, seed=5, end=END))
    assert _same(first, _tables(Spec(customers=300, seed=5, end=END)))
    assert not _same(first, _tables(Spec(customers=300, seed=6, end=END)))


def test_generated_data_is_shaped_like_cdnow_at_about_ten_orders_and_touchpoints_per_customer():
    spec = Spec(customers=4000, seed=2, end=END)
    (tables,) = _tables(spec)
    customers, orders = tables["lifecycle_customer"], tables["lifecycle_order"]
    touchpoints, feedback = tables["lifecycle_touchpoint"], tables["lifecycle_feedback"]
    assert 8.5 <= len(orders["id"]) / spec.customers <= 11.5
    assert 8.5 <= len(touchpoints["id"]) / spec.customers <= 11.5
    per_customer = np.bincount(orders["customer_id"], minlength=spec.customers + 1)[1:]
    buyers = per_customer[per_customer > 0]
    assert abs(np.mean(per_customer == 0) - spec.lead_share) < 0.03  # leads: customers without an order
    assert abs(np.mean(buyers == 1) - generate.cdnow_shape().one_time_share) < 0.06
    referred = customers["referred_by_id"][customers["referred_by_id"] > 0]
    assert len(referred) > 0 and np.all(referred < customers["id"][customers["referred_by_id"] > 0])
    assert np.all(orders["placed_at"] < np.datetime64(END.isoformat()))
    first_seen = dict(zip(customers["id"], customers["first_seen_at"], strict=True))
    assert all(first_seen[c] <= t for c, t in zip(orders["customer_id"], orders["placed_at"], strict=True))
    assert set(np.unique(touchpoints["kind"])) <= set(generate.KINDS)
    assert 0 < len(feedback["id"]) < spec.customers * 0.2


@pytest.fixture
def loaded(transactional_db):
    """300 generated customers loaded with COPY, every template installed."""
    from bench import lifecycle_runs

    dataset = load.dataset_load(scale="tiny", spec=Spec(customers=300, seed=3, end=END), progress=lambda _: None)
    return dataset, lifecycle_runs.models_install()


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [list(load.TABLES)])
        return {row[0] for row in cursor.fetchall()}


def test_the_loader_copies_into_the_migrated_schema_and_restores_its_indexes(transactional_db):
    from lifecycle.models import Customer, Order, Touchpoint

    indexes = _index_names()
    dataset = load.dataset_load(scale="tiny", spec=Spec(customers=300, seed=3, end=END), progress=lambda _: None)

    assert _index_names() == indexes
    assert Customer.objects.count() == 300
    assert Order.objects.count() == dataset.orders > 300
    assert Touchpoint.objects.count() == dataset.touchpoints > 300
    assert Customer.objects.filter(referred_by__isnull=False).exists()
    # The sequences continue after the copied ids, and the load is recorded for the next run.
    assert Customer.objects.create(external_id="after-the-load", first_seen_at=timezone.now()).pk == 301
    assert load.dataset_matches(load.dataset_get(), Spec(customers=300, seed=3, end=END))
    load.dataset_reset_live(dataset)
    assert not Customer.objects.filter(external_id="after-the-load").exists()


def test_every_measurement_runs_and_the_report_renders(loaded, tmp_path):
    from bench import explain, http_runs, lifecycle_runs, metrics_runs, report, scale

    dataset, models = loaded
    as_of = timezone.now()
    rows: list[Row] = []
    rows += lifecycle_runs.full_rows(models, as_of=as_of, runs=1)
    rows += lifecycle_runs.floor_rows(models, as_of=as_of, runs=1)
    rows.append(lifecycle_runs.added_model_row(models["ecommerce"], classified=models["status"], as_of=as_of))
    active = {key: models[key] for key in lifecycle_runs.ACTIVE_KEYS}
    rows += lifecycle_runs.orm_rows(active, as_of=as_of, runs=1, sample_size=40)
    rows.append(lifecycle_runs.history_build(models["status"], months=2, as_of=as_of))
    rows.append(lifecycle_runs.single_customer_row(samples=5))
    rows += lifecycle_runs.periodic_rows(active, runs=1)
    # (300 customers hold too few repeat purchases before a calibration end a year back for the BG/NBD fit.)
    rows += metrics_runs.metrics_rows(
        model=models["status"], day=as_of.date(), runs=1, calibration_end=as_of.date() - timedelta(days=120)
    )
    with http_runs.gunicorn(workers=1, log=tmp_path / "gunicorn.log") as server:
        rows.append(http_runs.ingestion_row(server, workers=1, clients=2, batches=2, runs=1, batch_size=20))
        rows += http_runs.page_rows(
            server, workers=1, pages={"overview": ("Overview page", "/")}, clients=2, requests=2
        )
        rows += http_runs.export_rows(
            server, path="/api/v1/models/ecommerce/funnel/customers/?stage=reach&export=csv", runs=1, what="all"
        )
    by_key = {row.key: row for row in rows}

    assert all(row.values and all(value >= 0 for value in row.values) for row in rows)
    # The floor and the naive loop classify exactly as the app does.
    assert all("result = the app's: yes" in by_key[f"floor.{key}.empty"].data for key in lifecycle_runs.TEMPLATE_KEYS)
    assert all("result = the app's: yes" in by_key[f"orm.{key}.empty"].data for key in active)
    assert "300 customers, 300 transitions" in by_key["full.status.empty"].data
    assert "300 customers, 300 transitions" in by_key["full.ecommerce.added"].data
    assert "incremental" in by_key["periodic.status"].data and "NOT" not in by_key["periodic.status"].data
    assert "300 rows" in by_key["export.csv"].data
    assert by_key["ingest.http"].median > 0

    text = report.section(title="scale tiny", preamble=["Tiny."], rows=rows, notes=["A note."])
    assert "| Full reclassification of `status` (model_reclassify), from an empty current state |" in text
    full = by_key["full.status.empty"]
    assert full.vs_floor == pytest.approx(full.median / by_key["floor.status.empty"].median)
    assert "p95 ≤ 20 ms" in text and "≥ 5,000 orders/s" in text

    path = tmp_path / "QUERIES.md"
    path.write_text(f"old\n{explain.FINDINGS_START}\nkept by hand\n{explain.FINDINGS_END}\nold plans\n")
    suite = scale.Suite(scale="tiny", seed=3, runs=1, queries=path)
    suite.dataset, suite.models = dataset, models
    suite.part_explain()
    covering = {row.key: row for row in suite.part_covering()}
    written = path.read_text()
    assert "kept by hand" in written and "old plans" not in written
    assert "### Classification of one chunk of `status`" in written and "Execution Time" in written
    assert "with `bench_order_customer_covering`" in written
    assert {"covering.create", "covering.full.status.converged", "covering.floor.status.converged"} <= set(covering)
    with connection.cursor() as cursor:  # the experiment's index is gone again
        cursor.execute("SELECT to_regclass('bench_order_customer_covering')")
        assert cursor.fetchone()[0] is None


def test_the_periodic_pass_classifies_the_changed_customers_and_not_everyone(loaded):
    from bench import lifecycle_runs
    from lifecycle.models import ClassificationRun, Order, RunKind

    _, models = loaded
    before = Order.objects.count()
    lifecycle_runs.periodic_rows({"status": models["status"]}, share=0.1, runs=1)
    run = ClassificationRun.objects.filter(model=models["status"], kind=RunKind.PERIODIC).latest("started_at")
    assert Order.objects.count() == before + 30  # one new order for 10 % of the 300 customers
    assert run.incremental and 30 <= run.customers_evaluated < 300


def test_a_full_pass_dispatched_to_one_and_to_two_workers_gives_what_the_rules_say(loaded, settings):
    from bench import report, worker_runs

    _, models = loaded
    settings.CLM_CLASSIFY_CHUNK_SIZE = 50  # 300 customers: 6 chunks for the workers to share
    rows = worker_runs.workers_rows(models["status"], as_of=timezone.now(), runs=1)

    assert [row.key for row in rows] == [
        "workers.status.empty.1",
        "workers.status.empty.2",
        "workers.status.converged.1",
        "workers.status.converged.2",
    ]
    assert all("300 customers in 6 chunks" in row.data for row in rows)
    assert "300 transitions" in rows[0].data and "0 transitions" in rows[3].data
    assert all("result = the rules evaluated in one query: yes" in row.data for row in rows)
    assert all("× the speed of one worker" in row.note for row in rows[1::2])
    report.evaluate(rows)
    assert rows[1].target == "faster than one worker, same result" and rows[1].met == (rows[1].median < rows[0].median)


def test_the_shop_sources_suite_runs_at_a_tiny_size(transactional_db, tmp_path):
    from bench import report, source_runs
    from lifecycle.models import Customer, CustomerStage
    from lifecycle.sources.models import DeliveryState, SourceDelivery

    sizes = source_runs.Sizes(
        customers=30, orders=200, webhooks=3, reclassified=2, api_batches=2, api_batch_size=20, gunicorn_workers=1
    )
    rows, notes = source_runs.suite(runs=1, seed=4, empty=lambda: None, sizes=sizes, data_dir=tmp_path)
    by_key = {row.key: row for row in rows}

    assert list(by_key) == [
        "sources.import",
        "sources.import.customers",
        "sources.import.orders",
        "sources.ingest",
        "ingest.http",
        "sources.webhook",
        "sources.reclassify",
    ]
    assert all(row.values and all(value > 0 for value in row.values) for row in rows)
    assert "30 customers" in by_key["sources.import"].data and "200 orders" in by_key["sources.import"].data
    assert "× the API ingestion in-process" in by_key["sources.import.orders"].note
    assert len(by_key["sources.webhook"].values) == 3 and len(by_key["sources.reclassify"].values) == 2
    # The three webhooks wait for a worker; the warm-up one and the two timed ones were written and classified.
    assert SourceDelivery.objects.filter(state=DeliveryState.PENDING).count() == 3
    assert SourceDelivery.objects.filter(state=DeliveryState.PROCESSED).count() == 3
    webhook_customers = Customer.objects.filter(external_id__startswith=str(source_runs.WEBHOOK_IDS)[:4])
    assert CustomerStage.objects.filter(customer__in=webhook_customers, stage__key="new").count() == 3
    # The files are made once per size and seed.
    (folder,) = tmp_path.glob("shopify-*")
    assert sum(1 for _ in (folder / "orders.jsonl").open()) == 200

    text = report.section(title="shop sources", preamble=["Tiny."], rows=rows, notes=notes)
    assert "p95 ≤ 50 ms (issue 16)" in text and "p95 ≤ 5 s (issue 16)" in text
