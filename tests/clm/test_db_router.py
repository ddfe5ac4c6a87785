"""The read-replica router (off by default): which reads go to the replica, and that configuring it wires it up."""

import json
import subprocess
import sys

from django.contrib.auth.models import User
from django.db import router
from django.http import HttpResponse
from django.test import RequestFactory

from clm.db_router import ReplicaReadsMiddleware, ReplicaRouter
from lifecycle.models import Customer
from metrics.models import MetricSnapshot
from tests.conftest import PROJECT_ROOT


def read_database_during(method: str, path: str) -> dict[str, str | None]:
    seen = {}
    replica_router = ReplicaRouter()

    def view(request):
        seen["customer"] = replica_router.db_for_read(Customer)
        seen["snapshot"] = replica_router.db_for_read(MetricSnapshot)
        seen["user"] = replica_router.db_for_read(User)
        return HttpResponse()

    ReplicaReadsMiddleware(view)(getattr(RequestFactory(), method.lower())(path))
    return seen


def test_page_and_api_reads_of_domain_tables_go_to_the_replica():
    for path in ("/", "/funnel/", "/api/v1/customers/"):
        assert read_database_during("GET", path) == {"customer": "replica", "snapshot": "replica", "user": None}


def test_writes_posts_the_admin_sessions_and_jobs_stay_on_the_primary():
    assert read_database_during("POST", "/api/v1/orders/") == {"customer": None, "snapshot": None, "user": None}
    assert read_database_during("GET", "/admin/lifecycle/customer/") == {
        "customer": None,
        "snapshot": None,
        "user": None,
    }
    assert ReplicaRouter().db_for_read(Customer) is None  # outside a request: a Celery job
    assert ReplicaRouter().db_for_write(Customer) == "default"
    assert not ReplicaRouter().allow_migrate("replica", "lifecycle")


def test_the_router_is_off_by_default_and_on_with_a_replica_url(tmp_path):
    assert router.routers == []
    probe = (
        "import json, django; django.setup(); from django.conf import settings; from django.db import connections; "
        "connections['replica'].cursor().execute('SELECT 1'); "
        "print(json.dumps([sorted(settings.DATABASES), settings.DATABASE_ROUTERS, settings.MIDDLEWARE[0]]))"
    )
    replica = f"sqlite:///{tmp_path / 'replica.sqlite3'}"
    result = subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "clm.settings",
            "CLM_DATA_DIR": str(tmp_path),
            "DATABASE_REPLICA_URL": replica,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == [
        ["default", "replica"],
        ["clm.db_router.ReplicaRouter"],
        "clm.db_router.ReplicaReadsMiddleware",
    ]
