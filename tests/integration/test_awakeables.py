"""Awakeables over HTTP: `POST {prefix}/restate/awakeables/{id}/resolve|reject` (and Restate's short `/a/`), with
curl-like requests (httpx) and Restate's own TypeScript client, against the real web server and workers."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

import objects
from objects.models import Status
from objects.services import invocation_get
from tests.integration.test_restate_client import JS, _ensure_client
from tests.support import wait_for

pytestmark = pytest.mark.workers


@pytest.fixture
def tokens(live_web):
    made = {}
    for name in ("alice", "bob"):
        made[name] = {"Authorization": f"Token {Token.objects.create(user=User.objects.create_user(name)).key}"}
    return made


def suspended_approval(redis_client, key: str) -> tuple[str, str]:
    """A Waiter.approve invocation suspended on its awakeable: (invocation id, awakeable id)."""
    invocation_id = objects.send("Waiter", key, "approve")
    got = redis_client.blpop([f"waiter:ids:{key}"], timeout=30)
    assert got is not None
    wait_for(lambda: invocation_get(invocation_id).status == Status.SUSPENDED)
    return invocation_id, got[1].decode()


def test_resolve_over_http_resumes_the_handler_with_the_value(live_web, tokens, redis_client):
    invocation_id, awakeable_id = suspended_approval(redis_client, "alice-1")
    url = f"{live_web.url}/ingress/restate/awakeables/{awakeable_id}/resolve"
    response = httpx.post(url, json={"approved": True, "by": "alice"}, headers=tokens["alice"], timeout=30)
    assert response.status_code == 202 and response.content == b""
    wait_for(lambda: invocation_get(invocation_id).status == Status.SUCCEEDED)
    assert invocation_get(invocation_id).output == {"value": {"approved": True, "by": "alice"}, "runs": 1}
    again = httpx.post(url, json={"approved": False}, headers=tokens["alice"], timeout=30)
    assert again.status_code == 409
    message = f"The awakeable {awakeable_id} was already resolved."
    assert again.json() == {"code": 409, "message": message, "source": "ingress"}


def test_reject_over_http_is_a_terminal_error_in_the_handler(live_web, tokens, redis_client):
    invocation_id, awakeable_id = suspended_approval(redis_client, "alice-2")
    response = httpx.post(
        f"{live_web.url}/ingress/restate/a/{awakeable_id}/reject",
        content=b"budget exceeded",
        headers={**tokens["alice"], "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 202
    wait_for(lambda: invocation_get(invocation_id).status == Status.SUCCEEDED)
    assert invocation_get(invocation_id).output == {"rejected": "budget exceeded", "runs": 1}


def test_resolving_needs_a_signed_in_caller_with_access_to_the_key(live_web, tokens, redis_client):
    invocation_id, awakeable_id = suspended_approval(redis_client, "alice-3")
    url = f"{live_web.url}/ingress/restate/awakeables/{awakeable_id}/resolve"
    anonymous = httpx.post(url, json=1, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["source"] == "ingress"
    other = httpx.post(url, json=1, headers=tokens["bob"], timeout=30)  # Waiter lets bob call bob-* keys only
    assert other.status_code == 404 and other.json()["message"] == f"No awakeable {awakeable_id!r}."
    assert httpx.get(url, headers=tokens["alice"], timeout=30).status_code == 405
    time.sleep(0.3)
    assert invocation_get(invocation_id).status == Status.SUSPENDED


@pytest.mark.parametrize(
    ("awakeable_id", "status"),
    [("sign_1" + "A" * 27, 404), ("sign_1short", 400), ("inv_123", 400)],
    ids=["unknown", "too-short", "not-an-awakeable-id"],
)
def test_an_unknown_id_is_404_and_a_malformed_one_400(live_web, tokens, awakeable_id, status):
    response = httpx.post(
        f"{live_web.url}/ingress/restate/awakeables/{awakeable_id}/resolve", json=1, headers=tokens["alice"], timeout=30
    )
    assert response.status_code == status
    assert set(response.json()) == {"code", "message", "source"}


def test_awakeable_ids_are_unguessable():
    from objects.waits import AWAKEABLE_ID, awakeable_id

    ids = {awakeable_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(AWAKEABLE_ID.match(i) and i.startswith("sign_1") and len(i) == 33 for i in ids)  # 160 bits


def test_restate_typescript_client_resolves_and_rejects(live_web, redis_client):
    _ensure_client()
    user = User.objects.create_user("js")
    token = Token.objects.create(user=user).key
    resolved, resolve_id = suspended_approval(redis_client, "js-resolve")
    rejected, reject_id = suspended_approval(redis_client, "js-reject")
    env = {
        **os.environ,
        "INGRESS_URL": f"{live_web.url}/ingress",
        "TOKEN": token,
        "AWAKEABLE_RESOLVE": resolve_id,
        "AWAKEABLE_REJECT": reject_id,
    }
    done = subprocess.run(["node", "restate_client.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["resolved"] is None and out["rejected"] is None
    assert out["resolvedTwice"]["status"] == 409
    wait_for(lambda: invocation_get(resolved).status == invocation_get(rejected).status == Status.SUCCEEDED)
    assert invocation_get(resolved).output == {"value": {"approved": "js"}, "runs": 1}
    assert invocation_get(rejected).output == {"rejected": "js says no", "runs": 1}


def test_the_api_and_the_admin_show_what_a_suspended_invocation_awaits(live, redis_client, admin_client):
    from objects.services import invocation_cancel

    invocation_id, awakeable_id = suspended_approval(redis_client, "alice-shown")
    sleeping = objects.send("BenchAwait", "shown", "sleep", {"ms": 60_000})
    wait_for(lambda: invocation_get(sleeping).status == Status.SUSPENDED)

    detail = admin_client.get(f"/api/invocations/{invocation_id}/").json()
    assert detail["status"] == "suspended"
    assert detail["awaiting"] == {"awakeables": [awakeable_id], "sleep_until": None}
    assert [(e["kind"], e["name"]) for e in detail["journal"]] == [
        ("run", "runs"),
        ("awakeable", "awakeable"),
        ("run", "publish"),
    ]
    slept = admin_client.get(f"/api/invocations/{sleeping}/").json()
    until = invocation_get(sleeping).not_before
    assert slept["awaiting"]["awakeables"] == [] and slept["awaiting"]["sleep_until"].startswith(until.strftime("%Y"))

    page = admin_client.get(f"/admin/objects/invocation/{invocation_get(invocation_id).pk}/change/").content.decode()
    assert "suspended" in page and awakeable_id in page and 'value="cancel_invocations"' in page
    overview = admin_client.get("/admin/objects/instance/overview/").content.decode()
    link = "/admin/objects/invocation/?type_name__exact=Waiter&amp;status__exact=suspended"
    assert f'<td class="suspended"><a href="{link}">1</a>' in overview

    objects.resolve_awakeable(awakeable_id, "done")
    wait_for(lambda: invocation_get(invocation_id).status == Status.SUCCEEDED)
    assert admin_client.get(f"/api/invocations/{invocation_id}/").json()["awaiting"] is None
    invocation_cancel(invocation=invocation_get(sleeping))
