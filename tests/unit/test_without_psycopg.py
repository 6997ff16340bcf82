"""A project on the SQLite default needs no psycopg: PostgreSQL support is the `postgres` extra, so the app, its
URLs, its system checks and the ASGI wrap must import and answer without it. A child process hides psycopg
(an import hook: this repository's virtualenv has it installed) and serves one refused call through
`objects.asgi.wrap`, which gives it to Django on the threads as on any SQLite project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, importlib.abc, json, sys

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {"psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Hidden())
sys.path.insert(0, sys.argv[1])
import django
django.setup()
from django.core.management import call_command
call_command("check")
from django.core.wsgi import get_wsgi_application
from objects.asgi import wrap

app = wrap(get_wsgi_application(), threads=1)
scope = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
    "path": "/ingress/Counter/k/add", "raw_path": b"/ingress/Counter/k/add", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")],
    "client": ("127.0.0.1", 5000), "server": ("localhost", 80),
}
sent = []

async def receive():
    return {"type": "http.request", "body": b"1", "more_body": False}

async def send(message):
    sent.append(message)

asyncio.run(app(scope, receive, send))
body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
print(json.dumps({"status": sent[0]["status"], "body": json.loads(body), "psycopg": "psycopg" in sys.modules}))
"""


def test_the_app_imports_checks_and_answers_on_sqlite_without_psycopg(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["psycopg"] is False
    assert answer["status"] == 401 and answer["body"]["source"] == "ingress", answer
