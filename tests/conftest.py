import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.utils import translation
from rest_framework.test import APIClient

from clm.base.services import api_key_create
from lifecycle.models import LifecycleModel
from lifecycle.templates import template_install

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The fixtures of the page tests: a logged-in client per role (marketer, viewer).
pytest_plugins = ["tests.pages"]

# Locks, advisory locks and killed connections behave as in production only on PostgreSQL; CI always runs there
# (pytest_configure below refuses CI without it), so these tests are skipped only on a developer's SQLite.
needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (CI runs it)")


def missing_dependency(reason: str) -> NoReturn:
    """Skip a test whose tool or data is missing on a developer's machine; under CI=true fail it: CI has them all."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    """In CI the suite must run on the real services; a missing one fails the run instead of being skipped."""
    if os.environ.get("CI", "").lower() != "true":
        return
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing or not os.environ["DATABASE_URL"].startswith("postgres"):
        pytest.exit(f"CI=true needs DATABASE_URL (PostgreSQL) and REDIS_URL; missing or wrong: {missing}", returncode=3)


@pytest.fixture
def status_model(db) -> LifecycleModel:
    """The `status` model that migrate installs as the default."""
    return LifecycleModel.objects.get(key="status")


@pytest.fixture
def ecommerce_model(db) -> LifecycleModel:
    return template_install(key="ecommerce")[0]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def _client_with_key(scopes: set[str]) -> APIClient:
    _, key = api_key_create(name=f"test {'+'.join(sorted(scopes))}", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def viewer_client(client, db):
    """A logged-in browser session of a user with the viewer role."""
    user = User.objects.create_user("vera", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="viewer"))
    client.force_login(user)
    return client


@pytest.fixture
def writer(db) -> APIClient:
    """A REST client whose key has the read and write scopes."""
    return _client_with_key({"read", "write"})


@pytest.fixture
def reader(db) -> APIClient:
    """A REST client whose key has only the read scope."""
    return _client_with_key({"read"})


def error_fields(response) -> dict[str, list[str]]:
    """An API error's messages by field ("" for the request or item as a whole), after checking the one error shape
    (docs/API.md): {"detail", "code", "errors": [{"field", "message", "code"(, "index")}]}."""
    body = response.json()
    assert set(body) == {"detail", "code", "errors"} and body["detail"] and body["code"], body
    fields: dict[str, list[str]] = {}
    for error in body["errors"]:
        assert set(error) - {"index"} == {"field", "message", "code"} and error["code"], error
        fields.setdefault(error["field"], []).append(error["message"])
    return fields


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a process the tests start (worker, web server): on the test database."""
    env = {**os.environ, "DEBUG": "1", "PYTHONUNBUFFERED": "1", **extra}
    if "DATABASE_URL" not in extra:
        db = connection.settings_dict
        if db["ENGINE"].endswith("postgresql"):
            env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        else:
            env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    return env


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start real Celery workers on the test database and the configured broker; all stopped at the end.

    start_worker(name, pool="prefork", concurrency=1, beat=False, env={...}) returns the Popen of the worker (with
    prefork, the parent of the processes that run tasks) once it is ready.
    """
    started: list[tuple[subprocess.Popen, Path]] = []
    from clm.celery import app

    app.control.purge()  # messages that earlier tests sent to the broker would be consumed by these workers

    def start(name="worker", *, pool="prefork", concurrency=1, beat=False, env=None, ready_timeout=60):
        log_path = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "clm", "worker", f"--hostname={name}@%h", f"--pool={pool}"]
        command += [f"--concurrency={concurrency}", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
        command += ["-B"] if beat else []
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed command line
                command, cwd=PROJECT_ROOT, env=subprocess_env(**(env or {})), stdout=log, stderr=subprocess.STDOUT
            )
        started.append((process, log_path))
        wait_for(
            lambda: " ready." in log_path.read_text() or process.poll() is not None,
            timeout=ready_timeout,
            message=f"worker {name} to be ready",
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        return process

    yield start
    for process, _ in started:
        process.terminate()
    for process, log_path in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        # Shown by pytest when the test fails: every line of beat's (what it sent, and when) and the log's end.
        text = log_path.read_text()
        print(f"--- {log_path.name}, beat\n" + "\n".join(line for line in text.splitlines() if "/Beat]" in line))
        print(f"--- {log_path.name}, the end\n" + text[-12000:])


@pytest.fixture
def celery_worker_process(start_worker):
    """A real Celery worker with embedded beat, on the test database and the configured broker."""
    return start_worker("worker", pool="solo", beat=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Counts cached by one test (lifecycle.selectors.current_stage_counts) are not another test's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A German page leaves German active in the thread (tests/language.py); the next test starts in English."""
    yield
    translation.deactivate()


@pytest.fixture
def side():
    """A second connection to the test database, outside Django: it holds the locks that stall a job."""
    import psycopg

    db = connection.settings_dict
    side = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True)
    yield side
    side.close()  # a failed test must not leave its lock behind for the database flush


@pytest.fixture
def eager(monkeypatch):
    """Celery tasks run in the calling process."""
    from clm.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


def worker_children(worker: subprocess.Popen) -> list[int]:
    """The pids of the processes a prefork worker runs its tasks in."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def wait_for(condition, *, timeout: float, interval: float = 0.25, message: str = "condition"):
    """Poll until condition() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")
