"""docs/build-your-own.md, followed as a reader does: the stack `make run` starts (scripts/stack.py `services()`:
the worker, the sweeper's beat, the web server, on SQLite with demo data), then every sample of the page in page
order on that one database (tests/docs/page_runner.py). The same page runs again on PostgreSQL, where it must
show the same.

Each run has its own database (a SQLite file, or a new database on the test PostgreSQL server) and its own Redis
database number, so the session's test workers and this stack never take each other's work.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from stack import PYTHON, ROOT, Stack, free_port, services, wait_port

from tests.docs.samples import DOCS, ORDERED
from tests.integration.test_install import _new_postgres_database

PAGE = DOCS / "build-your-own.md"


@contextlib.contextmanager
def _redis_database(number: int) -> Iterator[str]:
    url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"].rstrip("/")) + f"/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def _follow_the_page(database_url: str, redis_url: str, folder: Path) -> str:
    """Migrate, start what `make run` starts, load the demo data, run the page; returns the runner's report."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OBJECTS_TEST_OBJECTS": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    full = {**os.environ, **env}
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=full, check=True)
    port = free_port()
    stack = Stack()
    try:
        commands = services("127.0.0.1", port, folder / "celerybeat-schedule", worker_name=f"page{port}@%h")
        for name in ("worker", "sweeper"):
            stack.spawn(name, commands[name], env=env, log=folder / f"{name}.log")
        subprocess.run([PYTHON, "manage.py", "load_demo"], cwd=ROOT, env=full, check=True, capture_output=True)
        stack.spawn("web", commands["web"], env=env, log=folder / "web.log")
        wait_port(port, what="the web server")
        done = subprocess.run(
            [PYTHON, "-m", "tests.docs.page_runner", str(PAGE), f"http://127.0.0.1:{port}"],
            cwd=ROOT,
            env=full,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stack.stop()
    if done.returncode == 0:
        return ""
    logs = "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in sorted(folder.glob("*.log"))
    )
    return f"{done.stdout}\n{done.stderr[-3000:]}\n{logs}"


def test_the_page_is_run_in_order_here_only():
    assert PAGE.name in ORDERED and PAGE.is_file()


@pytest.mark.workers
def test_the_page_shows_what_a_reader_sees_on_sqlite(tmp_path):
    with _redis_database(15) as redis_url:
        report = _follow_the_page(f"sqlite:///{tmp_path / 'db.sqlite3'}", redis_url, tmp_path)
    assert not report, report


@pytest.mark.workers
def test_the_page_shows_the_same_on_postgresql(tmp_path):
    with _new_postgres_database() as database, _redis_database(14) as redis_url:
        url = (
            f"postgres://{database['POSTGRES_USER']}@{database['POSTGRES_HOST']}:{database['POSTGRES_PORT']}/"
            f"{database['POSTGRES_DB']}"
        )
        report = _follow_the_page(url, redis_url, tmp_path)
    assert not report, report
