import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from rest_framework.test import APIClient

from clm.services import api_key_create

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """In CI the suite must run on the real services; a missing one fails the run instead of being skipped."""
    if os.environ.get("CI", "").lower() != "true":
        return
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing or not os.environ["DATABASE_URL"].startswith("postgres"):
        pytest.exit(f"CI=true needs DATABASE_URL (PostgreSQL) and REDIS_URL; missing or wrong: {missing}", returncode=3)


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


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real Celery worker with embedded beat, on the test database and the configured broker."""
    env = {**os.environ, "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - fixed command line
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "clm",
            "worker",
            "-B",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    print((tmp_path / "worker.log").read_text()[-3000:])  # shown by pytest when the test fails


def wait_for(condition, *, timeout: float, interval: float = 0.25, message: str = "condition"):
    """Poll until condition() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")
