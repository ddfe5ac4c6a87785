"""Faults injected under the real web stack (gunicorn, production settings) on the test database: Redis stopped
while the shop keeps sending data, and PostgreSQL going away and coming back."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from clm.base.crypto import encryption_keys
from clm.base.services import api_key_create
from lifecycle.models import ChangedCustomer, CustomerStage, LifecycleModel, Order, RunKind
from lifecycle.services import model_reclassify
from tests.conftest import PROJECT_ROOT, needs_postgresql, subprocess_env, wait_for
from tests.factories import CustomerFactory, OrderFactory
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: str
    seconds: float

    def json(self):
        return json.loads(self.body)


def call(url: str, *, data=None, headers=None, timeout: float = 30) -> Reply:
    request = urllib.request.Request(  # noqa: S310 - a local test server
        url, data=json.dumps(data).encode() if data is not None else None, headers=headers or {}
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Reply(response.status, response.read().decode(), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), time.monotonic() - started)


@pytest.fixture
def web_server(tmp_path):
    """start(**env) runs gunicorn with production settings (DEBUG off) on the test database; returns its URL."""
    started = []

    def start(**env: str) -> str:
        port = free_port()
        production = {
            "DEBUG": "0",
            "SECRET_KEY": django_settings.SECRET_KEY,  # the test's sessions must verify there
            "CLM_ENCRYPTION_KEYS": ",".join(encryption_keys()),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "DATABASE_CONNECT_TIMEOUT": "2",
            **env,
        }
        log = (tmp_path / f"gunicorn-{port}.log").open("w")
        command = [sys.executable, "-m", "gunicorn", "clm.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", "1", "--timeout", "60", "--no-control-socket"]
        process = subprocess.Popen(  # noqa: S603 - fixed command line
            command, cwd=PROJECT_ROOT, env=subprocess_env(**production), stdout=log, stderr=subprocess.STDOUT
        )
        started.append((process, log))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return call(f"{url}/health/", timeout=5).status in (200, 503)
            except OSError:
                return False

        wait_for(answers, timeout=60, message="gunicorn to answer")
        return url

    yield start
    for process, log in started:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, which it can stop without touching the suite's."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (Debian: apt-get install redis-server)"
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed command line
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(up, timeout=10, message="redis-server to listen")
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def viewer_session_cookie() -> str:
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("vera", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="viewer"))
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def order(number: int, customer: str) -> dict:
    return {
        "external_id": f"order-{number}",
        "customer_external_id": customer,
        "amount": "30.00",
        "placed_at": (timezone.now() - timedelta(days=2)).isoformat(),
    }


def test_with_redis_stopped_pages_and_reads_work_ingestion_stores_and_the_next_pass_catches_up(web_server, own_redis):
    redis_process, redis_url = own_redis
    url = web_server(REDIS_URL=redis_url)
    _, key = api_key_create(name="shop", scopes={"read", "write"})
    api = {"Authorization": f"Api-Key {key}"}
    page = {"Cookie": viewer_session_cookie()}
    status = LifecycleModel.objects.get(key="status")
    CustomerFactory(external_id="before", first_seen_at=timezone.now() - timedelta(days=30))
    CustomerFactory(external_id="during", first_seen_at=timezone.now() - timedelta(days=30))
    model_reclassify(model=status)  # the last full pass: both prospects

    redis_process.terminate()
    redis_process.wait(timeout=10)

    assert call(f"{url}/", headers=page).status == 200
    assert call(f"{url}/api/v1/customers/", headers=api).status == 200
    posted = call(f"{url}/api/v1/orders/", data=[order(1, "during")], headers=api)
    assert posted.status == 201 and posted.seconds < 10
    assert Order.objects.filter(external_id="order-1").exists()
    health = call(f"{url}/health/")
    assert health.status == 200 and health.json()["broker"]["ok"] is False and health.json()["status"] == "degraded"

    # The reclassification the broker could not take waits in PostgreSQL; the next periodic pass does it.
    assert ChangedCustomer.objects.filter(customer__external_id="during", model=status).exists()
    run = model_reclassify(model=status, kind=RunKind.PERIODIC)
    assert run.incremental and run.customers_evaluated == 1
    assert CustomerStage.objects.get(model=status, customer__external_id="during").stage.key == "new"
    assert CustomerStage.objects.get(model=status, customer__external_id="before").stage.key == "prospect"


@needs_postgresql
def test_while_postgresql_is_away_requests_get_a_quick_503_and_nothing_is_written_then_it_recovers(web_server):
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"], int(db["PORT"]))
    url = web_server(DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}")
    _, key = api_key_create(name="shop", scopes={"read", "write"})
    api = {"Authorization": f"Api-Key {key}"}
    page = {"Cookie": viewer_session_cookie()}
    OrderFactory(customer=CustomerFactory(external_id="known"))
    assert call(f"{url}/", headers=page).status == 200
    assert call(f"{url}/api/v1/customers/", headers=api).status == 200

    proxy.cut()  # what a restart looks like to CLM: connections dropped, new ones refused
    for reply in (
        call(f"{url}/", headers=page),
        call(f"{url}/api/v1/customers/", headers=api),
        call(f"{url}/api/v1/orders/", data=[order(2, "known")], headers=api),
    ):
        assert reply.status == 503 and reply.seconds < 10
    assert reply.json()["detail"].startswith("The database is unavailable")
    assert not Order.objects.filter(external_id="order-2").exists()
    assert call(f"{url}/health/").status == 503

    proxy.restore()
    assert call(f"{url}/", headers=page).status == 200
    assert call(f"{url}/api/v1/orders/", data=[order(2, "known")], headers=api).status == 201
    proxy.close()
