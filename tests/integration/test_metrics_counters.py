"""/metrics' counters and histograms are cumulative: counted in Redis by the process that finishes an
invocation (a worker, or an operator's cancel or kill), so they never go down when the retention sweep
deletes finished invocations, and every web process reports every worker's counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

import objects
from objects.models import Invocation, Status
from objects.services import invocation_cancel, invocation_kill
from objects.worker.sweeper import sweep

pytestmark = pytest.mark.workers


def scrape() -> dict[tuple[str, tuple], float]:
    client = Client()
    client.force_login(User.objects.get_or_create(username="metrics-ops", defaults={"is_staff": True})[0])
    response = client.get("/metrics")
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def recorder(found: dict, name: str, handler: str, **labels: str) -> float:
    return value(found, name, type="Recorder", handler=handler, **labels)


def test_counters_and_histograms_never_go_down_when_retention_deletes_invocations(live_web, settings):
    before = scrape()
    token = Token.objects.create(user=User.objects.create_user("metered")).key
    headers = {"Authorization": f"Token {token}"}

    def post(path: str, body: dict) -> requests.Response:
        return requests.post(f"{live_web.url}/ingress/Recorder/{path}", json=body, headers=headers, timeout=30)

    for n in range(6):  # over real HTTP: the event loop's path and, for the token's first call, the threads'
        assert post(f"metered-{n % 2}/append", {"value": n}).status_code == 200
    for _ in range(2):
        assert post("metered-0/refuse", {"message": "no", "status": 409}).status_code == 409
    assert objects.call("Recorder", "metered-flaky", "flaky", {"id": 1, "fail_times": 1}) == 1  # one retry
    later = timedelta(hours=2)
    delayed = [objects.send("Recorder", "metered-later", "append", {"value": n}, delay=later) for n in (1, 2)]
    invocation_cancel(invocation=Invocation.objects.get(uid=delayed[0][4:]))
    invocation_kill(invocation=Invocation.objects.get(uid=delayed[1][4:]))

    after = scrape()

    def grew(found: dict, name: str, handler: str, **labels: str) -> float:
        return recorder(found, name, handler, **labels) - recorder(before, name, handler, **labels)

    finished = {("append", "succeeded"): 6, ("refuse", "failed"): 2, ("flaky", "succeeded"): 1}
    finished |= {("append", "cancelled"): 1, ("append", "killed"): 1}
    for (handler, outcome), count in finished.items():
        assert grew(after, "objects_invocations_total", handler, outcome=outcome) == count, (handler, outcome)
    assert grew(after, "objects_invocation_retries_total", "flaky") == 1
    for histogram in ("objects_handler_duration_seconds", "objects_end_to_end_latency_seconds"):
        for handler, count in (("append", 6), ("refuse", 2), ("flaky", 1)):  # those that ran: not cancelled, killed
            assert grew(after, f"{histogram}_count", handler) == count, (histogram, handler)
            assert grew(after, f"{histogram}_bucket", handler, le="+Inf") == count
            assert grew(after, f"{histogram}_sum", handler) > 0
    assert grew(after, "objects_end_to_end_latency_seconds_sum", "flaky") >= 0.1  # waited for its retry's backoff

    # the retention sweep deletes every one of them
    long_ago = timezone.now() - timedelta(days=30)
    Invocation.objects.filter(type_name="Recorder").update(created_at=long_ago, finished_at=long_ago)
    settings.OBJECTS_INVOCATION_RETENTION = timedelta(days=7)
    assert sweep()["invocations_deleted"] == 11
    assert not Invocation.objects.filter(type_name="Recorder", status__in=[Status.SUCCEEDED, Status.FAILED]).exists()

    swept = scrape()
    recorded = {sample: count for sample, count in after.items() if ("type", "Recorder") in sample[1]}
    assert recorded and "objects_invocations_total" in {name for name, _ in recorded}
    for sample, count in recorded.items():
        if sample[0] != "objects_invocations_open":  # a gauge: the open invocations now
            assert swept.get(sample, 0.0) == count, sample
