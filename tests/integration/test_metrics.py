"""GET /metrics: counters and histograms from what was counted in Redis, gauges from the database at scrape time;
staff or allow-listed addresses only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from objects.models import Instance, Invocation, Status
from objects.signals import tally
from objects.signals.notify import notify_done
from objects.worker.sweeper import SWEEPER_KEY, record_sweep

pytestmark = pytest.mark.django_db


def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw", is_staff=True))
    return client


def samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def make(instance: Instance, status: str, handler: str = "append", *, run: float = 0.0, wait: float = 0.0, **fields):
    now = timezone.now()
    row = Invocation.objects.create(
        instance=instance,
        type_name=instance.type_name,
        key=instance.key,
        handler=handler,
        kind="exclusive",
        status=status,
        **fields,
    )
    if status in (Status.SUCCEEDED, Status.FAILED):
        row.created_at, row.started_at, row.finished_at = (
            now - timedelta(seconds=wait + run),
            now - timedelta(seconds=run),
            now,
        )
        Invocation.objects.filter(pk=row.pk).update(
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at
        )
    return row


@pytest.fixture
def no_metrics(redis_client):
    keys = [tally.INVOCATIONS_KEY, tally.RETRIES_KEY, *tally.HISTOGRAM_KEYS.values()]
    tally.commands()  # what an earlier test left unsent
    redis_client.delete(*keys)
    yield
    redis_client.delete(*keys)


def test_gauges_come_from_the_database_counters_and_histograms_from_what_was_counted(
    no_metrics, django_capture_on_commit_callbacks
):
    cart = Instance.objects.create(type_name="Recorder", key="c1")
    make(cart, Status.BACKING_OFF, attempts=2)
    old = make(cart, Status.PENDING)
    Invocation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    make(cart, Status.PENDING)
    uncounted = make(cart, Status.SUCCEEDED, run=1.0)  # a row alone is not counted: its finish is
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():  # the test's transaction "commits"
        tally.finished(make(cart, Status.SUCCEEDED, run=0.02, wait=0.1))
        tally.finished(make(cart, Status.SUCCEEDED, run=3.0, wait=0.0))
        tally.finished(make(cart, Status.FAILED, handler="refuse", run=0.001))
        tally.retried(old)
        try:
            with transaction.atomic():  # a savepoint that rolls back: its counts go with it
                tally.finished(uncounted)
                tally.retried(old)
                raise RuntimeError
        except RuntimeError:
            pass
    notify_done([])  # sends what was counted, as the done signals after a drain's commit do
    found = samples(staff_client().get("/metrics"))

    def value(name, **labels):
        return found[(name, tuple(sorted(labels.items())))]

    assert value("objects_invocations_total", type="Recorder", handler="append", outcome="succeeded") == 2
    assert value("objects_invocations_total", type="Recorder", handler="refuse", outcome="failed") == 1
    assert value("objects_invocations_open", type="Recorder", handler="append", status="pending") == 2
    assert value("objects_invocations_open", type="Recorder", handler="append", status="backing_off") == 1
    assert value("objects_invocation_retries_total", type="Recorder", handler="append") == 1
    duration = {"type": "Recorder", "handler": "append"}
    assert value("objects_handler_duration_seconds_bucket", le="0.01", **duration) == 0
    assert value("objects_handler_duration_seconds_bucket", le="0.025", **duration) == 1
    assert value("objects_handler_duration_seconds_bucket", le="2.5", **duration) == 1
    assert value("objects_handler_duration_seconds_bucket", le="5.0", **duration) == 2
    assert value("objects_handler_duration_seconds_bucket", le="+Inf", **duration) == 2
    assert value("objects_handler_duration_seconds_count", **duration) == 2
    assert value("objects_handler_duration_seconds_sum", **duration) == pytest.approx(3.02, abs=0.001)
    assert value("objects_end_to_end_latency_seconds_bucket", le="0.1", **duration) == 0
    assert value("objects_end_to_end_latency_seconds_bucket", le="0.25", **duration) == 1
    assert value("objects_end_to_end_latency_seconds_count", type="Recorder", handler="refuse") == 1
    assert value("objects_inbox_depth", type="Recorder") == 3
    assert value("objects_oldest_pending_age_seconds", type="Recorder") >= 90


def test_metrics_report_sweeper_actions_recorded_by_any_process(redis_client):
    redis_client.delete(SWEEPER_KEY)
    record_sweep({"redispatched": 3, "state_expired": 0})
    record_sweep({"redispatched": 2, "history_deleted": 7})
    found = samples(staff_client().get("/metrics"))
    assert found[("objects_sweeper_actions_total", (("action", "redispatched"),))] == 5
    assert found[("objects_sweeper_actions_total", (("action", "history_deleted"),))] == 7
    redis_client.delete(SWEEPER_KEY)


def test_metrics_refuse_anonymous_and_non_staff():
    assert Client().get("/metrics").status_code == 403
    client = Client()
    client.force_login(User.objects.create_user("shopper", password="pw"))
    assert client.get("/metrics").status_code == 403


def test_metrics_allow_listed_address_needs_no_login():
    with override_settings(OBJECTS_METRICS_ALLOW=["10.0.0.7"]):
        assert Client(REMOTE_ADDR="10.0.0.7").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="10.0.0.8").get("/metrics").status_code == 403
        assert Client(REMOTE_ADDR="10.0.0.8", HTTP_X_FORWARDED_FOR="10.0.0.7").get("/metrics").status_code == 403
