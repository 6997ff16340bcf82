"""End to end: Restate's own TypeScript client (@restatedev/restate-sdk-clients) against gunicorn + workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from objects.models import Invocation, Status

pytestmark = pytest.mark.workers
JS = Path(__file__).resolve().parent.parent / "js"


def _ensure_client() -> None:
    if (JS / "node_modules" / "@restatedev" / "restate-sdk-clients").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for this test (Node 20+); `make test` installs the client"
    subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300)


def test_restate_typescript_client_works_unchanged(live_web):
    _ensure_client()
    user = User.objects.create_user("js-client")
    token = Token.objects.create(user=user).key
    env = {**os.environ, "INGRESS_URL": f"{live_web.url}/ingress", "TOKEN": token}
    done = subprocess.run(["node", "restate_client.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["callCount"] == 1 and out["callItems"] == ["first"]

    assert out["delayedSend"]["status"] == "Accepted"
    delayed = Invocation.objects.get(uid=out["delayedSend"]["invocationId"][4:])
    assert delayed.status == Status.SUCCEEDED and out["delayedItems"] == ["later"]
    assert round((delayed.not_before - delayed.created_at).total_seconds(), 1) == 1.5
    assert delayed.finished_at >= delayed.not_before

    assert out["idempotent"] == {"first": "Accepted", "again": "PreviouslyAccepted", "sameId": True}
    assert out["idempotentResult"] == 1
    assert Invocation.objects.filter(key="js-idem").count() == 1

    assert out["unknownHandler"]["status"] == 404
    assert "no_such_handler" in json.loads(out["unknownHandler"]["body"])["message"]
    assert out["terminal"]["status"] == 422
    terminal = json.loads(out["terminal"]["body"])
    assert (terminal["code"], terminal["message"], terminal["source"]) == (422, "nope", "invocation")

    assert out["oddKeyCount"] == 1 and out["oddKeyItems"] == ["slash"]
    assert Invocation.objects.filter(key="team/a b ключ", handler="append").count() == 1
