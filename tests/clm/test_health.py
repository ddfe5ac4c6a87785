import pytest
from django.db import DatabaseError
from django.utils import timezone

from clm.base.models import WorkerHeartbeat
from clm.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_health_is_public_json_with_database_broker_and_worker(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert set(body["broker"]) >= {"ok", "transport"}
    assert body["worker"]["ok"] is False  # no heartbeat yet
    assert body["status"] in {"ok", "degraded"}


def test_health_reports_the_broker_down_but_stays_200(client, settings, monkeypatch):
    from clm.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    body = client.get("/health/").json()
    assert body["broker"]["ok"] is False and body["broker"]["error"]
    assert body["status"] == "degraded"


def test_health_is_503_when_the_database_is_unreachable(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("clm.base.health.connection.cursor", broken_cursor)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert "connection refused" in response.json()["database"]["error"]


def test_heartbeat_task_shows_on_health(client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # the heartbeat's age is measured on a clock that stands still
    heartbeat.apply()
    body = client.get("/health/").json()
    assert body["worker"]["ok"] is True
    assert body["worker"]["age_seconds"] == 0


def test_an_old_heartbeat_means_the_worker_is_not_running(client, settings):
    WorkerHeartbeat.objects.create(name="worker", beat_at=timezone.now() - timezone.timedelta(minutes=10))
    assert client.get("/health/").json()["worker"]["ok"] is False
