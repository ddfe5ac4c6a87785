"""Measurements through the real HTTP stack: gunicorn serving clm.wsgi on the benchmark database, production
settings (DEBUG off), clients on the same machine (http.client, keep-alive, one connection per client thread).

Times are measured by the client: request sent to last byte read, so they include the loopback and the client's
own parsing (well under a millisecond here) besides the server time.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.measure import Row, percentile

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def connection(self, timeout: float = 600) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def gunicorn(*, workers: int, log: Path) -> Iterator[Server]:
    """gunicorn with `workers` sync workers on a free port, as in production (DEBUG off, plain HTTP on loopback)."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions and keys made in this process must be valid there
        "CLM_ENCRYPTION_KEYS": ",".join(settings.CLM_ENCRYPTION_KEYS),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CLM_DATA_DIR": str(settings.DATA_DIR),
        "LOG_LEVEL": "WARNING",
    }
    handle = log.open("a")
    process = subprocess.Popen(  # noqa: S603 - fixed command line
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "clm.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "600",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = Server("127.0.0.1", port, process)
    try:
        _wait_ready(server, workers)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        handle.close()


def _wait_ready(server: Server, workers: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}; see its log")
        try:
            conn = server.connection(timeout=5)
            conn.request("GET", "/health/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 503) and len(server.workers()) >= workers:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /health/ in time")


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- ingestion -----------------------------------------------------------------------------------------------


def api_key(scopes: set[str]) -> str:
    from clm.base.services import api_key_create

    _, key = api_key_create(name=f"bench {'+'.join(sorted(scopes))}", scopes=scopes)
    return key


def ingestion_row(
    server: Server, *, workers: int, clients: int, batches: int, runs: int, batch_size: int = 1000
) -> Row:
    """POST /api/v1/orders/ with `batch_size` orders per request from `clients` threads, `batches` requests per run."""
    from lifecycle.models import Customer

    key = api_key({"write"})
    external_ids = list(Customer.objects.order_by("?").values_list("external_id", flat=True)[: batch_size * 4])
    placed_at = (datetime.now().astimezone() - timedelta(hours=1)).isoformat()
    throughput, latencies = [], []
    for run in range(runs):
        bodies = [
            json.dumps(
                [
                    {
                        "external_id": f"live-{time.time_ns()}-{run}-{b}-{i}",
                        "customer_external_id": external_ids[(b * batch_size + i) % len(external_ids)],
                        "placed_at": placed_at,
                        "amount": "19.90",
                        "channel": "email",
                    }
                    for i in range(batch_size)
                ]
            ).encode()
            for b in range(batches)
        ]
        local = threading.local()

        def post(body: bytes, local=local) -> float:
            if not hasattr(local, "conn"):
                local.conn = server.connection()
            started = time.perf_counter()
            local.conn.request(
                "POST",
                "/api/v1/orders/",
                body=body,
                headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
            )
            response = local.conn.getresponse()
            content = response.read()
            if response.status != 201:
                raise RuntimeError(f"ingestion answered {response.status}: {content[:300]!r}")
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies += list(pool.map(post, bodies))
        throughput.append(batches * batch_size / (time.perf_counter() - started))
    return Row(
        "ingest.http",
        f"API order ingestion through gunicorn ({workers} workers), {batch_size:,}-order batches, "
        f"{clients} concurrent clients",
        f"{batches} batches per run ({batches * batch_size:,} orders); a batch takes p50 "
        f"{percentile(latencies, 50) * 1000:.0f} ms, p95 {percentile(latencies, 95) * 1000:.0f} ms",
        throughput,
        "orders/s",
    )


# --- pages -----------------------------------------------------------------------------------------------------


def session_cookie() -> str:
    """A logged-in session of a superuser (the pages show every area)."""
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _get(conn: http.client.HTTPConnection, path: str, cookie: str) -> float:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return (time.perf_counter() - started) * 1000


def page_rows(server: Server, *, workers: int, pages: dict[str, str], clients: int, requests: int) -> list[Row]:
    """Each page requested `requests` times by one client, then by `clients` clients at once (each `requests`)."""
    cookie = session_cookie()
    rows = []
    for key, (name, path) in pages.items():
        warm = server.connection()
        _get(warm, path, cookie)  # stores the snapshots the page reads when missing
        single = [_get(warm, path, cookie) for _ in range(requests)]
        warm.close()

        def client_run(_: int, path=path) -> list[float]:
            conn = server.connection()
            try:
                return [_get(conn, path, cookie) for _ in range(requests)]
            finally:
                conn.close()

        with ThreadPoolExecutor(clients) as pool:
            loaded = [latency for part in pool.map(client_run, range(clients)) for latency in part]
        for suffix, values, who in (("", single, "1 client"), (".load", loaded, f"{clients} concurrent clients")):
            rows.append(
                Row(
                    f"page.{key}{suffix}",
                    f"{name} (`{path}`), {who}, gunicorn {workers} workers",
                    f"{len(values)} requests; p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms",
                    values,
                    "ms",
                    stat="p95",
                )
            )
    return rows


# --- CSV export ------------------------------------------------------------------------------------------------


def export_rows(server: Server, *, path: str, runs: int, what: str) -> list[Row]:
    """Download the export with one worker serving it; its memory is sampled every 20 ms while it streams."""
    key = api_key({"read"})
    (worker,) = server.workers()
    seconds, growth, rows_seen, size = [], [], 0, 0
    for _ in range(runs):
        before = _rss_kib(worker)
        peak = [before]
        done = threading.Event()

        def sample(peak=peak, done=done) -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_kib(worker))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        conn = server.connection()
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Api-Key {key}"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        size, lines = 0, 0
        while block := response.read(1 << 16):
            size += len(block)
            lines += block.count(b"\n")
        seconds.append(time.perf_counter() - started)
        done.set()
        sampler.join()
        conn.close()
        growth.append((peak[0] - before) / 1024)
        rows_seen = lines - 1
    rss_mib = _rss_kib(worker) / 1024
    return [
        Row(
            "export.csv",
            f"CSV export of {what} (`{path}`), streamed through gunicorn",
            f"{rows_seen:,} rows, {size / 2**20:.0f} MiB",
            seconds,
            "s",
        ),
        Row(
            "export.memory",
            "CSV export: the serving worker's peak memory above its size before the request",
            f"sampled every 20 ms; the worker's resident size afterwards {rss_mib:.0f} MiB",
            growth,
            "MiB",
        ),
    ]
