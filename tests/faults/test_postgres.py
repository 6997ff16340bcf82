"""PostgreSQL restarted under HTTP load: 503 with a clear JSON message while it is down (never a 500), the
workers recover without a restart, and afterwards nothing accepted is lost or applied twice."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connections

import objects
from objects.errors import CallTimeout
from tests.faults.model import HttpSubmit, Sweeper, check_invariants, settle

pytestmark = pytest.mark.workers


@pytest.fixture
def staff_token(live) -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("fault-staff", password="x", is_staff=True)
    return Token.objects.create(user=user).key


def _probe(base_url: str, token: str) -> dict[str, tuple[int, str]]:
    """One request to each kind of page while the database is down."""
    auth = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        requests = {
            "ingress call": client.post("/ingress/Recorder/probe/append", json={"value": 1}, headers=auth),
            "ingress shared": client.post("/ingress/Recorder/probe/items", headers=auth),
            "ingress anonymous": client.post("/ingress/Recorder/probe/append", json={"value": 1}),
            "healthz": client.get("/healthz"),
            "api schema": client.get("/api/schema/", headers=auth),
            "shop home": client.get("/"),
            "shop home (browser)": client.get("/", headers={"Accept": "text/html"}),
            "admin login": client.get("/admin/login/"),
        }
    return {name: (r.status_code, r.headers.get("content-type", ""), r.text[:300]) for name, r in requests.items()}


def _wait_across(key: str, outcomes: dict) -> None:
    """A caller of objects.call() whose invocation runs (2 s) while the database goes down and comes back."""
    try:
        outcomes[key] = objects.call("Recorder", key, "hold", {"sleep": 2}, timeout=45)
    except Exception as exc:
        outcomes[key] = exc
    finally:
        connections.close_all()


def test_postgres_restart_under_http_load(
    live, live_web, load_factory, fast_redispatch, postgres_server, staff_token, redis_client
):
    live_web_workers, worker_pids = live, [p.pid for p in live.procs]
    submit = HttpSubmit(live_web.url, staff_token)
    load = load_factory(prefix="pg", keys=50, threads=10, call_share=0.3, submit=submit, seed=31)
    # Clients that only send: a call waits for its result, so while the three callers below hold workers every
    # thread of the mixed load can be waiting for a call when the database stops, and no request of the load
    # meets the outage (it happened in about one run in seven); a send never waits for a worker.
    senders = load_factory(prefix="pgsend", keys=10, threads=2, call_share=0.0, submit=submit, seed=32)
    waiters: dict[str, object] = {}
    with Sweeper(interval=1.0) as sweeper:
        load.start()
        senders.start()
        time.sleep(3.0)
        threads = [threading.Thread(target=_wait_across, args=(f"pgwait-{i}", waiters)) for i in range(3)]
        for thread in threads:
            thread.start()
        for i in range(3):  # each is inside its handler, in a worker's open transaction, when the database stops
            assert redis_client.blpop([f"entered:pgwait-{i}"], timeout=30)
        down_at = time.monotonic()
        postgres_server.stop()
        time.sleep(0.5)
        probes = _probe(live_web.url, staff_token)
        time.sleep(1.5)
        postgres_server.start()
        up_at = time.monotonic()
        connections.close_all()  # this thread's connection died with the server
        time.sleep(5.0)
        for thread in threads:
            thread.join(timeout=60)
        load.stop()
        senders.stop()
        assert not live.dead(), f"a worker did not survive the PostgreSQL restart: {live.dead()}"
        settle_seconds = settle("pg")
        settle("pgsend")
    figures = check_invariants(load)
    send_figures = check_invariants(senders)
    after = [a for a in load.attempts if a.started > up_at + 2]
    print(
        f"\npostgres restart: down {up_at - down_at:.1f}s; load {load.stopped - load.started:.1f}s at "
        f"{load.rate():.0f} accepted/s; HTTP statuses {submit.statuses}; {figures}; senders {send_figures}; "
        f"accepted after restart {sum(a.accepted for a in after)}; settled in {settle_seconds:.1f}s; "
        f"doorbells re-rung {sweeper.redispatched}; probes while down: "
        + "; ".join(f"{name}: {status} {ctype}" for name, (status, ctype, _) in probes.items())
    )
    for name, (status, ctype, text) in probes.items():
        print(f"  {name}: {status} {ctype} {text[:120]!r}")
    print(f"  callers waiting in objects.call() across the outage: {waiters}")
    for key, outcome in waiters.items():
        assert outcome == "done" or (isinstance(outcome, CallTimeout) and outcome.invocation_id), (key, outcome)
    assert not submit.unclear, f"requests failed without a 503 JSON message: {submit.unclear[:5]}"
    assert submit.statuses.get(503, 0) > 0, "no request met the outage: the test proved nothing"
    bad = {name: p for name, p in probes.items() if p[0] >= 500 and p[0] != 503}
    assert not bad, f"pages answered a 5xx other than 503 while the database was down: {bad}"
    for name in ("ingress call", "ingress shared", "healthz", "shop home"):
        status, ctype, text = probes[name]
        assert status == 503 and "application/json" in ctype and "database" in text.lower(), (name, probes[name])
    status, ctype, text = probes["shop home (browser)"]
    assert status == 503 and "text/html" in ctype and "database is unavailable" in text, probes["shop home (browser)"]
    assert [p.pid for p in live_web_workers.procs] == worker_pids, "a worker was restarted"
    assert all(p.poll() is None for p in live_web_workers.procs), "a worker died with the database"
    assert any(a.outcome == "returned" for a in after), "calls did not work again after the restart"
    assert any(a.outcome == "sent" for a in after), "sends did not work again after the restart"
