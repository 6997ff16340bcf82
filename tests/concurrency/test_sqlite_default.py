"""The zero-setup default: the hot-key guarantee also holds on SQLite (WAL, immediate transactions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import Workers

ROOT = Path(__file__).resolve().parents[2]

CLIENT = textwrap.dedent("""
    import os, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    django.setup()
    from concurrent.futures import ThreadPoolExecutor
    from django.db import connections
    import objects

    def one(i):
        try:
            return objects.call("Recorder", "hot", "append", {"value": i}, timeout=120)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(32) as pool:
        lengths = sorted(pool.map(one, range(500)))
    items = objects.call("Recorder", "hot", "items")
    print("LENGTHS_OK" if lengths == list(range(1, 501)) else f"LENGTHS_BAD {lengths[:10]}")
    print("ITEMS_OK" if sorted(items) == list(range(500)) else f"ITEMS_BAD {len(items)}")
""")


@pytest.mark.workers
def test_hot_key_keeps_every_update_on_sqlite(tmp_path):
    redis_base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": f"{redis_base}/4",
        "OBJECTS_TEST_OBJECTS": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    worker = Workers(env["DATABASE_URL"], count=1, env=env).start_one(0)
    try:
        out = subprocess.run(
            [sys.executable, "-c", CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LENGTHS_OK" in out.stdout and "ITEMS_OK" in out.stdout, out.stdout
