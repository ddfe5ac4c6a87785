"""Dashboard reads from a PostgreSQL read replica (off by default; on when DATABASE_REPLICA_URL is set).

Only what a replica can serve without surprising anyone: GET and HEAD requests of the dashboard pages and the REST
API read the domain tables (lifecycle, campaigns, metrics) from the `replica` alias. Everything else stays on the
primary: writes, every request's session, user and API-key lookups (a login must not depend on replication lag),
the admin (it reads back what it has just saved), and Celery jobs, which classify against the newest data.
"""

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
REPLICA_APPS = {"lifecycle", "campaigns", "metrics"}
READ_METHODS = {"GET", "HEAD"}

_replica_reads: ContextVar[bool] = ContextVar("clm_replica_reads", default=False)


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str | None:
        if _replica_reads.get() and model._meta.app_label in REPLICA_APPS:
            return REPLICA
        return None

    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica holds the primary's data: objects from both may be related

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == "default"


class ReplicaReadsMiddleware:
    """Marks the read-only requests of pages and API whose domain reads may go to the replica."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        replica = request.method in READ_METHODS and not request.path.startswith("/admin/")
        token = _replica_reads.set(replica)
        try:
            return self.get_response(request)
        finally:
            _replica_reads.reset(token)
