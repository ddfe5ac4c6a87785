"""The shop sources (issue 16), `make bench SCALE=sources`: a Shopify shop's history import from an empty database,
the answer time of its webhooks, and how soon a webhook's order reclassifies its customer with a worker running.

The shop is a local fake of the Admin GraphQL API (2025-10) and its bulk operations' result files, answering the
requests the client makes (lifecycle/sources/shopify/client.py, bulk.py) in the shapes of the tests' fake
(tests/lifecycle/sources/fake_shopify.py): its nodes and the webhook payload start from the same documented
fixtures. The JSONL results are generated once into BENCH_DATA_DIR, a line at a time, and served from disk in the
byte ranges the client asks for. Every bulk operation is COMPLETED when first asked about: the time measured is CLM's
(reading, mapping, writing), not Shopify's to build the files, nor a network's.
"""

import base64
import hashlib
import hmac
import json
import re
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from bench import cdnow_runs, http_runs, worker_runs
from bench.measure import Row

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "lifecycle" / "sources" / "fixtures" / "shopify"
SHOP_VERSION = 1  # of the generated files: change it with the generator, and new files are made
ACCESS_TOKEN = "shpat_bench_not_secret"  # noqa: S105 - the fake shop's
WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105 - the fake shop's
API_PATH = "/admin/api/2025-10/graphql.json"
KINDS = ("customers", "orders")  # the client's order; bulk operation n is KINDS[n - 1]
HISTORY_YEARS = 3
# Fixed, so that files generated once stay the same; ingestion refuses only times in the future.
HISTORY_START = datetime(2022, 10, 1, tzinfo=UTC)
WEBHOOK_IDS = 9_000_000_000_000  # the webhooks' orders and customers, apart from the history's
RECLASSIFY_TIMEOUT = 60.0
POLL_SECONDS = 0.005
# https://shopify.dev/docs/api/usage/limits: a bucket with room, so the client never waits for it.
COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}
# Where the orders came from (Order.customerJourneySummary): paid search, a newsletter, a referral, typed in.
VISITS: list[dict[str, Any]] = [
    {
        "lastVisit": {
            "landingPage": "https://bench.myshopify.com/?utm_source=google&utm_medium=cpc&utm_campaign=winter",
            "referrerUrl": "https://www.google.com/",
            "utmParameters": {"source": "google", "medium": "cpc", "campaign": "winter"},
        }
    },
    {
        "lastVisit": {
            "landingPage": "https://bench.myshopify.com/sale?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
            "referrerUrl": None,
            "utmParameters": {"source": "newsletter", "medium": "email", "campaign": "spring"},
        }
    },
    {"lastVisit": {"landingPage": "https://bench.myshopify.com/", "referrerUrl": "https://blog.example.net/"}},
    {"lastVisit": None},
]
COMPACT = (",", ":")  # Shopify's JSONL lines carry no spaces
STATUSES = ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")  # all completed purchases by the source's default
STATUS_SHARES = (0.95, 0.03, 0.02)


@dataclass(frozen=True)
class Sizes:
    customers: int = 100_000
    orders: int = 1_000_000
    webhooks: int = 500  # answer time, one after another
    reclassified: int = 30  # webhooks whose customer's reclassification is waited for
    api_batches: int = 24  # the API ingestion measured beside the import
    api_batch_size: int = 1000
    gunicorn_workers: int = 3  # as the scale suite's `http` part


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


# --- the shop's history, generated once ------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopFiles:
    customers: Path
    orders: Path
    counts: dict[str, int]

    def path(self, kind: str) -> Path:
        return self.customers if kind == "customers" else self.orders


def _moment(seconds: float) -> str:
    return (HISTORY_START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _customer_node(template: dict[str, Any], number: int, joined: str) -> dict[str, Any]:
    """A Customer node as the bulk query asks for it (CUSTOMER_FIELDS)."""
    consent = {**template["emailMarketingConsent"], "consentUpdatedAt": joined}
    return {
        **template,
        "id": f"gid://shopify/Customer/{number}",
        "firstName": "Customer",
        "lastName": str(number),
        "defaultEmailAddress": {"emailAddress": f"customer{number}@example.com"},
        "createdAt": joined,
        "updatedAt": joined,
        "emailMarketingConsent": consent,
    }


def shop_files(directory: Path, *, customers: int, orders: int, seed: int) -> ShopFiles:
    """The two bulk results (JSONL), generated unless they exist: the customers, then the orders in the order they
    were placed, each carrying its customer as the bulk query asks (a nested object, not a connection). Customers
    join over three years, each order is a random customer's after they joined; amounts are lognormal."""
    folder = directory / f"shopify-{customers}-{orders}-seed{seed}-v{SHOP_VERSION}"
    files = ShopFiles(folder / "customers.jsonl", folder / "orders.jsonl", {"customers": customers, "orders": orders})
    if files.orders.exists():
        return files
    print(f"Generating a Shopify shop of {customers:,} customers and {orders:,} orders in {folder} ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    span = 365 * HISTORY_YEARS * 86400
    joined_at = np.sort(rng.uniform(0, span, customers))
    buyer = rng.integers(0, customers, orders)
    placed_at = joined_at[buyer] + rng.random(orders) * (span - joined_at[buyer])
    chronological = np.argsort(placed_at)
    amounts = np.round(rng.lognormal(4.0, 0.6, orders), 2)[chronological].tolist()
    statuses = rng.choice(len(STATUSES), orders, p=STATUS_SHARES)[chronological].tolist()
    visits = rng.integers(0, len(VISITS), orders)[chronological].tolist()
    joined = [_moment(seconds) for seconds in joined_at.tolist()]
    customer_template, order_template = _fixture("graphql_customer.json"), _fixture("graphql_order.json")

    with files.customers.open("w") as out:
        for index, moment in enumerate(joined):
            out.write(json.dumps(_customer_node(customer_template, index + 1, moment), separators=COMPACT) + "\n")
    partial = files.orders.with_suffix(".partial")
    with partial.open("w") as out:
        for number, (index, seconds) in enumerate(
            zip(buyer[chronological].tolist(), placed_at[chronological].tolist(), strict=True), start=1
        ):
            customer = _customer_node(customer_template, index + 1, joined[index])
            amount, status, placed = amounts[number - 1], STATUSES[statuses[number - 1]], _moment(seconds)
            refunded = {"PAID": 0.0, "PARTIALLY_REFUNDED": round(amount / 2, 2), "REFUNDED": amount}[status]
            node = {
                **order_template,
                "id": f"gid://shopify/Order/{number}",
                "email": customer["defaultEmailAddress"]["emailAddress"],
                "createdAt": placed,
                "processedAt": placed,
                "updatedAt": placed,
                "displayFinancialStatus": status,
                "totalPriceSet": {"shopMoney": {"amount": f"{amount:.2f}", "currencyCode": "EUR"}},
                "totalRefundedSet": {"shopMoney": {"amount": f"{refunded:.2f}", "currencyCode": "EUR"}},
                "customer": customer,
                "customerJourneySummary": VISITS[visits[number - 1]],
            }
            out.write(json.dumps(node, separators=COMPACT) + "\n")
    partial.rename(files.orders)  # last: an interrupted generation is made again
    return files


# --- the fake shop ---------------------------------------------------------------------------------------------


@dataclass
class FakeShopify:
    """The Admin GraphQL API's bulk operations over the generated files, on a free port of 127.0.0.1."""

    files: ShopFiles
    url: str = ""
    bulk_asked: dict[str, float] = field(default_factory=dict)  # kind -> perf_counter() when its bulk run came

    def graphql(self, request: BaseHTTPRequestHandler) -> None:
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        if request.path != API_PATH:
            return _answer(request, 404, {"errors": "Not Found"})
        if request.headers.get("X-Shopify-Access-Token") != ACCESS_TOKEN:
            return _answer(request, 401, {"errors": "[API] Invalid API key or access token"})
        query, variables = body["query"], body.get("variables") or {}
        if "bulkOperationRunQuery" in query:
            kind = "customers" if variables["query"].lstrip("{ ").startswith("customers") else "orders"
            self.bulk_asked[kind] = time.perf_counter()
            operation = {"id": f"gid://shopify/BulkOperation/{KINDS.index(kind) + 1}", "status": "CREATED"}
            data: dict[str, Any] = {"bulkOperationRunQuery": {"bulkOperation": operation, "userErrors": []}}
        elif "node(id:" in query:
            kind = KINDS[int(variables["id"].rsplit("/", 1)[1]) - 1]
            node = {"id": variables["id"], "status": "COMPLETED", "errorCode": None}
            node |= {"objectCount": str(self.files.counts[kind]), "url": f"{self.url}/bulk/{kind}.jsonl"}
            data = {"node": node}
        elif "shop {" in query:
            data = {"shop": {"name": "CLM bench", "currencyCode": "EUR"}}
        else:
            return _answer(request, 200, {"errors": [{"message": "The bench's fake shop has no answer to this."}]})
        return _answer(request, 200, {"data": data, "extensions": {"cost": COST}})

    def file(self, request: BaseHTTPRequestHandler) -> None:
        """A result file in the byte range asked for (206 + Content-Range), as Shopify's storage serves it."""
        found = re.fullmatch(r"/bulk/(customers|orders)\.jsonl", request.path)
        wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        if not found or not wanted:
            return _answer(request, 404, {"errors": "Not Found"})
        path = self.files.path(found[1])
        size = path.stat().st_size
        first, last = int(wanted[1]), min(int(wanted[2]), size - 1)
        with path.open("rb") as handle:
            handle.seek(first)
            content = handle.read(last - first + 1)
        headers = {"Content-Range": f"bytes {first}-{last}/{size}"}
        return _answer(request, 206, content, content_type="application/jsonl", headers=headers)


def _answer(
    request: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request.send_response(status)
    for name, value in {"Content-Type": content_type, "Content-Length": str(len(content)), **(headers or {})}.items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(content)


@contextmanager
def fake_shopify(files: ShopFiles) -> Iterator[FakeShopify]:
    """The fake shop served by threads of this process (keep-alive, as the client's connections are)."""
    fake = FakeShopify(files)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms wait for an ACK between

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            fake.graphql(self)

        def do_GET(self) -> None:  # noqa: N802
            fake.file(self)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# --- the measurements ------------------------------------------------------------------------------------------


def source_connect(shop_url: str):
    """The source as an admin connects it (the services the page calls): plain HTTP is taken for a loopback shop."""
    from lifecycle.sources.models import Platform, SourceStatus
    from lifecycle.sources.services import source_connection_check, source_save

    source = source_save(
        source=None,
        actor=None,
        platform=Platform.SHOPIFY,
        name="Bench shop",
        shop_url=shop_url,
        currency="EUR",
        credentials={"access_token": ACCESS_TOKEN},
        webhook_secret=WEBHOOK_SECRET,
    )
    source = source_connection_check(source=source)
    if source.status != SourceStatus.CONNECTED:
        raise RuntimeError(f"the fake shop was not connected: {source.status_message}")
    return source


def import_rows(fake: FakeShopify, *, runs: int, empty: Callable[[], None]) -> list[Row]:
    """The whole history import (history_import_run, slice after slice as its task queues them), each run after
    `empty()` made the database empty; the customers' and the orders' bulk operations timed apart as well."""
    from lifecycle.models import Customer, Order
    from lifecycle.sources.models import ImportState
    from lifecycle.sources.sync import history_import_run

    counts = fake.files.counts
    seconds, customer_rates, order_rates = [], [], []
    for _ in range(runs):
        empty()
        source = source_connect(fake.url)
        started = time.perf_counter()
        while history_import_run(source_id=source.pk) == ImportState.QUEUED:
            pass  # the slice ran out: the next one continues from the checkpoint
        ended = time.perf_counter()
        source.refresh_from_db()
        written = {"customers": Customer.objects.count(), "orders": Order.objects.count()}
        if source.import_state != ImportState.DONE or written != counts or source.items_skipped:
            raise RuntimeError(
                f"history import ended {source.import_state} with {written}, {source.items_skipped} skipped, "
                f"of {counts}: {source.status_message}"
            )
        seconds.append(ended - started)
        customer_rates.append(counts["customers"] / (fake.bulk_asked["orders"] - started))
        order_rates.append(counts["orders"] / (ended - fake.bulk_asked["orders"]))
    megabytes = {kind: fake.files.path(kind).stat().st_size / 1e6 for kind in KINDS}
    shop = f"{counts['customers']:,} customers ({megabytes['customers']:,.0f} MB), {counts['orders']:,} orders"
    return [
        Row(
            "sources.import",
            "Shopify history import (history_import_run) into an empty database: a bulk operation per kind, its "
            "JSONL read in 1 MiB ranges, a transaction per range",
            f"{shop} ({megabytes['orders']:,.0f} MB, each with its customer); "
            f"{counts['orders'] / statistics.median(seconds):,.0f} orders/s over the whole import",
            seconds,
            "s",
        ),
        Row(
            "sources.import.customers",
            "History import: the customers' bulk operation",
            f"{counts['customers']:,} customers, from the import's start to the orders' bulk operation",
            customer_rates,
            "customers/s",
        ),
        Row(
            "sources.import.orders",
            "History import: the orders' bulk operation",
            f"{counts['orders']:,} orders and their customers, from the orders' bulk operation to the import's end",
            order_rates,
            "orders/s",
        ),
    ]


def webhook_request(source, number: int) -> tuple[str, bytes, dict[str, str]]:
    """An orders/create delivery as Shopify sends it: the first order of a new customer, now, signed with the
    source's secret; its own X-Shopify-Webhook-Id and X-Shopify-Event-Id."""
    from django.urls import reverse

    template = _fixture("orders_create.json")
    moment, email, shop_id = datetime.now(UTC).isoformat(), f"webhook{number}@example.com", WEBHOOK_IDS + number
    customer = {
        **template["customer"],
        "id": shop_id,
        "admin_graphql_api_id": f"gid://shopify/Customer/{shop_id}",
        "email": email,
        "created_at": moment,
        "updated_at": moment,
    }
    payload = {
        **template,
        "id": shop_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{shop_id}",
        "email": email,
        "contact_email": email,
        "created_at": moment,
        "processed_at": moment,
        "updated_at": moment,
        "customer": customer,
    }
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "bench.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Triggered-At": moment,
    }
    return reverse("source-webhook", args=[source.webhook_token]), body, headers


def _webhook_post(conn, path: str, body: bytes, headers: dict[str, str]) -> None:
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    content = response.read()
    if response.status != 200 or b"Received." not in content:
        raise RuntimeError(f"the webhook was answered {response.status}: {content[:300]!r}")


def webhook_row(server: http_runs.Server, source, *, requests: int, first: int, workers: int) -> Row:
    """Signed orders/create webhooks POSTed one after another; each timed from sending to the answer read."""
    conn = server.connection()
    latencies, size = [], 0
    for number in range(first, first + requests):
        path, body, headers = webhook_request(source, number)
        size = len(body)
        started = time.perf_counter()
        _webhook_post(conn, path, body, headers)
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    return Row(
        "sources.webhook",
        f"Shopify orders/create webhook answered (signature checked, delivery stored, its task enqueued), gunicorn "
        f"{workers} workers, one request after another",
        f"{requests} webhooks of {size / 1024:.1f} KiB, each a new customer's first order, each its own webhook id",
        latencies,
        "ms",
        stat="p95",
    )


def reclassification_row(server: http_runs.Server, source, *, webhooks: int, first: int, log_dir: Path) -> Row:
    """With one Celery worker running (no beat: the delivery's task writes the order and enqueues its customer's
    reclassification on commit), a new customer's first order by webhook, timed from sending it until the
    customer's current stage in the default model (`status` in a new database) is `new`."""
    from lifecycle.models import CustomerStage, LifecycleModel
    from lifecycle.sources.records import external_id

    model = LifecycleModel.objects.get(is_default=True)
    conn = server.connection()
    seconds = []
    with worker_runs.workers(1, log_dir=log_dir):
        for number in range(first, first + webhooks + 1):  # the first one is not counted: it warms the worker
            path, body, headers = webhook_request(source, number)
            stage = CustomerStage.objects.filter(
                model=model, customer__external_id=external_id(source, str(WEBHOOK_IDS + number)), stage__key="new"
            )
            started = time.perf_counter()
            _webhook_post(conn, path, body, headers)
            while not stage.exists():
                if time.perf_counter() - started > RECLASSIFY_TIMEOUT:
                    raise RuntimeError(f"webhook {number}'s customer not reclassified in {RECLASSIFY_TIMEOUT} s")
                time.sleep(POLL_SECONDS)
            seconds.append(time.perf_counter() - started)
    conn.close()
    return Row(
        "sources.reclassify",
        "A webhook's order reclassifies its customer: from sending the webhook to the customer's new stage in the "
        "default model, 1 Celery worker process",
        f"{webhooks} webhooks one after another (after one to warm the worker), each a new customer's first order; "
        f"the database polled every {POLL_SECONDS * 1000:.0f} ms",
        seconds[1:],
        "s",
        stat="p95",
    )


def suite(
    *,
    runs: int,
    seed: int,
    empty: Callable[[], None],
    keep: Callable[[list[Row]], None] = lambda rows: None,
    sizes: Sizes = Sizes(),
    data_dir: Path | None = None,
) -> tuple[list[Row], list[str]]:
    """Every row of the sources benchmark and the notes under its table. `empty()` makes the database empty before
    each import (run.py recreates it); the other rows run on what the last import wrote. `keep(rows)` is called with
    the rows so far after each measurement, so that a run failing late keeps the imports it measured."""
    from lifecycle.models import Customer
    from lifecycle.sources.models import Source

    data_dir = data_dir or Path(settings.DATA_DIR)
    files = shop_files(data_dir, customers=sizes.customers, orders=sizes.orders, seed=seed)
    with fake_shopify(files) as fake:
        rows = import_rows(fake, runs=runs, empty=empty)
    keep(rows)
    source = Source.objects.get()
    customers = list(Customer.objects.order_by("?").values_list("external_id", flat=True)[: sizes.api_batch_size * 4])
    api = {"batches": sizes.api_batches, "batch_size": sizes.api_batch_size}
    rows.append(cdnow_runs.ingestion_row(runs, key="sources.ingest", customers=customers, **api))
    keep(rows)
    workers = sizes.gunicorn_workers
    with http_runs.gunicorn(workers=workers, log=data_dir / "bench-gunicorn.log") as server:
        rows.append(http_runs.ingestion_row(server, workers=workers, clients=4, runs=runs, **api))
        rows.append(webhook_row(server, source, requests=sizes.webhooks, first=1, workers=workers))
        keep(rows)
        rows.append(
            reclassification_row(
                server, source, webhooks=sizes.reclassified, first=sizes.webhooks + 1, log_dir=data_dir
            )
        )
    by_key = {row.key: row for row in rows}
    imported = by_key["sources.import.orders"]
    imported.note = (
        f"{imported.median / by_key['sources.ingest'].median:.2f}× the API ingestion in-process and "
        f"{imported.median / by_key['ingest.http'].median:.2f}× through gunicorn with 4 clients (rows below, "
        "this run, this database)"
    )
    broker = settings.CELERY_BROKER_URL.split("@")[-1]
    notes = [
        "The shop is a local fake of Shopify's Admin GraphQL API (bench/source_runs.py), served by threads of the "
        "benchmark's process from files on local disk; its bulk operations are COMPLETED when first asked about. "
        "The import's times are CLM's (reading, mapping, writing, the checkpoint after every range), without "
        "Shopify's time to build the files or a network. The database is dropped and migrated before each import.",
        "The API ingestion rows are the baseline the import is compared with: measured in the same run on the "
        "database the last import filled, orders of random imported customers. The import runs in one process on "
        f"one connection, like the in-process row; through gunicorn {workers} workers serve 4 clients at once.",
        f"Ingestion and webhooks enqueue their tasks to the broker ({broker}); no worker ran until the "
        "reclassification row, whose worker started on a purged queue.",
    ]
    return rows, notes
