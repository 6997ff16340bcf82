"""GET /healthz: 200 when the database, Redis and a worker are up; 503 naming what is down (why: for staff)."""

import pytest

from objects.signals import notify


@pytest.fixture
def unreachable_redis(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    notify._client = None
    yield
    notify._client = None


def test_all_up_answers_200(live, client):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert len(body["workers"]["workers"]) >= 2


@pytest.mark.django_db
def test_no_worker_heartbeat_answers_503_naming_the_workers(admin_client, settings):
    # Another Redis database of the same server: up, but no worker writes its heartbeat there.
    settings.REDIS_URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/7"
    notify._client = None
    try:
        response = admin_client.get("/healthz")
    finally:
        notify._client = None
    assert response.status_code == 503
    assert response.json()["down"] == ["workers"]
    assert "heartbeat" in response.json()["workers"]["error"]


@pytest.mark.django_db
def test_redis_down_answers_503_naming_redis_and_workers(admin_client, unreachable_redis):
    response = admin_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis", "workers"]
    assert body["database"]["ok"] is True
    assert "Connection refused" in body["redis"]["error"] or "Error" in body["redis"]["error"]


@pytest.mark.django_db
def test_database_down_answers_503_naming_the_database(client, monkeypatch, caplog):
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "database" in response.json()["down"]
    assert response.json()["database"]["error"] == "unavailable"  # why, for staff only: none can sign in now
    assert "healthz: database down: connection to server failed: Connection refused" in caplog.text  # the log has it
