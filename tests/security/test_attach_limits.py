"""Attach and output under hostile clients: long waits hold no web thread, and they need the access of the
invocation's target. Over real HTTP against a web server with a small thread pool (OBJECTS_WEB_THREADS=4):
token requests are answered on the event loop, session-cookie requests by the threads."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from django.conf import settings
from django.test import Client

from objects.models import Instance, Invocation

from .servers import fetch, server_with

pytestmark = pytest.mark.django_db(transaction=True)

ATTACHES = 16


@pytest.fixture(scope="module")
def small_web(django_db_setup, django_db_blocker):
    with server_with(django_db_blocker, OBJECTS_WEB_THREADS="4") as server:
        yield server


def session_cookie(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"}


def held_invocation(server, person, redis_client) -> tuple[str, str, str]:
    """A Recorder.hold invocation that runs until the test releases it: (its id, its key, its release list)."""
    key, release, idem = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("attach", "release", "idem"))
    sent = fetch(
        server.url,
        "POST",
        f"/ingress/Recorder/{key}/hold/send",
        headers={**person.header, "Content-Type": "application/json", "Idempotency-Key": idem},
        body=f'{{"release": "{release}", "timeout": 60}}'.encode(),
    )
    assert sent.status == 202, sent.body
    assert redis_client.blpop([f"entered:{key}"], timeout=20), "the handler did not start"
    return sent.json()["invocationId"], f"/ingress/restate/invocation/Recorder/{key}/hold/{idem}", release


def still_served(server) -> None:
    """/healthz and a shop page answer (within a generous timeout: they must answer at all)."""
    health = fetch(server.url, "GET", "/healthz", timeout=15)
    assert health.status == 200, health.body
    page = fetch(server.url, "GET", "/", timeout=15)
    assert page.status == 200


def test_waiting_token_attaches_hold_no_web_thread(live, small_web, alice, redis_client):
    invocation_id, by_key, release = held_invocation(small_web, alice, redis_client)
    targets = [f"/ingress/restate/invocation/{invocation_id}/attach", f"{by_key}/attach"] * (ATTACHES // 2)
    with ThreadPoolExecutor(ATTACHES) as pool:
        try:
            waits = [pool.submit(fetch, small_web.url, "GET", target, headers=alice.header) for target in targets]
            time.sleep(1.5)
            assert not any(wait.done() for wait in waits), [w.result() for w in waits if w.done()][:1]
            still_served(small_web)
            assert not any(wait.done() for wait in waits), "the attaches stopped waiting"
        finally:
            redis_client.rpush(f"release:{release}", 1)
        answers = [wait.result() for wait in waits]
    assert [(a.status, a.body) for a in answers] == [(200, b'"done"')] * ATTACHES
    assert {a.headers["x-restate-id"] for a in answers} == {invocation_id}
    again = fetch(small_web.url, "GET", targets[0], headers=alice.header, timeout=10)
    assert (again.status, again.body) == (200, b'"done"')


def test_waiting_session_attaches_are_capped_on_the_threads(live, small_web, alice, redis_client):
    invocation_id, _, release = held_invocation(small_web, alice, redis_client)
    cookie = session_cookie(alice.user)
    target = f"/ingress/restate/invocation/{invocation_id}/attach"
    with ThreadPoolExecutor(ATTACHES) as pool:
        try:
            waits: list[Future] = [
                pool.submit(fetch, small_web.url, "GET", target, headers=cookie) for _ in range(ATTACHES)
            ]
            time.sleep(1.5)
            still_served(small_web)
            assert any(not wait.done() for wait in waits), "no attach was let wait"
            busy = [wait.result() for wait in waits if wait.done()]
            assert busy, "every attach holds a thread"
            for answer in busy:
                assert answer.status == 503, answer.body
                assert answer.json()["code"] == 503 and answer.json()["source"] == "ingress"
                assert "retry" in answer.json()["message"].lower()
                assert int(answer.headers["retry-after"]) >= 1
        finally:
            redis_client.rpush(f"release:{release}", 1)
        answers = [wait.result() for wait in waits]
    assert {(a.status, a.body) for a in answers if a.status != 503} == {(200, b'"done"')}


def test_attach_and_output_need_the_targets_access(live, small_web, alice, bob):
    """Anonymous: 401 whether the invocation exists or not. Another user: 404 for an id, as for an unknown id
    (the answer says nothing of whose it is); 403 by idempotency key, whose path names the key. On both paths."""
    instance = Instance.objects.create(type_name="Wallet", key=alice.user.username, paused=True)
    pending = Invocation.objects.create(
        instance=instance,
        type_name="Wallet",
        key=alice.user.username,
        handler="withdraw",  # an exclusive handler the owner may call (a deposit is for staff and other objects)
        kind="exclusive",
        input={"amount": 5, "tx_id": "t1"},
        idempotency_key="k1",
    )
    unknown = f"inv_{uuid.uuid4().hex}"
    by_key = f"/ingress/restate/invocation/Wallet/{alice.user.username}/withdraw"

    def get(target: str, headers: dict[str, str]):
        return fetch(small_web.url, "GET", target, headers=headers, timeout=15)

    for kind in ("attach", "output"):
        known_path, unknown_path = (f"/ingress/restate/invocation/{i}/{kind}" for i in (pending.public_id, unknown))
        anonymous = [get(path, {}) for path in (known_path, unknown_path, f"{by_key}/k1/{kind}", f"{by_key}/x/{kind}")]
        assert [a.status for a in anonymous] == [401] * 4, [a.body for a in anonymous]
        assert anonymous[0].json()["message"] == anonymous[1].json()["message"]
        for credentials in (bob.header, session_cookie(bob.user)):
            known, missing = get(known_path, credentials), get(unknown_path, credentials)
            assert (known.status, missing.status) == (404, 404), (known.body, missing.body)
            assert known.json()["message"].replace(pending.public_id, unknown) == missing.json()["message"]
            assert pending.key not in known.json()["message"]
            assert get(f"{by_key}/k1/{kind}", credentials).status == 403
            assert get(f"{by_key}/x/{kind}", credentials).status == 403
        for credentials in (alice.header, session_cookie(alice.user)):
            output = get(f"/ingress/restate/invocation/{pending.public_id}/output", credentials)
            assert output.status == 470, output.body
            assert get(f"{by_key}/k1/output", credentials).status == 470
