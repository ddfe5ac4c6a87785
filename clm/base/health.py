"""What /health/ reports: the database (decides the status code), the broker and the worker heartbeat."""

from typing import Any

from celery import current_app as celery_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import gettext_noop

from clm.base.models import WorkerHeartbeat

BROKER_TIMEOUT_SECONDS = 2


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except DatabaseError as exc:
        return {"ok": False, "engine": connection.vendor, "error": str(exc).strip()[:200]}


def broker_status() -> dict[str, Any]:
    transport = celery_app.conf.broker_url.split("://", 1)[0]
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
        return {"ok": True, "transport": transport}
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported, not raised
        return {"ok": False, "transport": transport, "error": str(exc).strip()[:200]}


def worker_status(*, database_ok: bool) -> dict[str, Any]:
    if not database_ok:
        return {"ok": False, "last_beat_at": None}
    beat = WorkerHeartbeat.objects.filter(name="worker").first()
    if beat is None:
        # /health/ answers in English; the overview page translates the text where it shows it.
        return {
            "ok": False,
            "last_beat_at": None,
            "detail": gettext_noop("no heartbeat yet: are worker and beat running?"),
        }
    age = (timezone.now() - beat.beat_at).total_seconds()
    return {
        "ok": age <= settings.CLM_HEARTBEAT_MAX_AGE,
        "last_beat_at": beat.beat_at.isoformat(),
        "age_seconds": round(age),
        "hostname": beat.hostname,
    }


def health_report() -> tuple[dict[str, Any], bool]:
    """The report, and whether the service is up (the database answers)."""
    database = database_status()
    parts = {"database": database, "broker": broker_status(), "worker": worker_status(database_ok=database["ok"])}
    all_ok = all(part["ok"] for part in parts.values())
    report = {"status": "ok" if all_ok else ("degraded" if database["ok"] else "down"), **parts}
    return report, database["ok"]
