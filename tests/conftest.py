"""Shared fixtures: real Celery worker processes against the test database, a clean Redis per test. The processes
and helpers behind them are in tests/support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import WebServer, Workers, _test_database_url, settle


@pytest.fixture(scope="session", autouse=True)
def static_root() -> None:
    """WhiteNoise looks for STATIC_ROOT (collectstatic's folder, which `make run` fills) and warns on each
    request of a fresh clone without it; the tests serve static files through the finders, so an empty folder
    is enough."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def flush_again_after_a_deadlock() -> Iterator[None]:
    """The flush after a test with live workers (TRUNCATE of every table, one lock after another) can deadlock
    against a worker's transaction that began after `settle` found the database quiet (a sweep, a drain woken
    late); PostgreSQL then rolls the flush back, and the next test would find the last one's rows. The flush
    runs again instead, once the worker's transaction has ended."""
    import time

    from django.test import TransactionTestCase

    real = TransactionTestCase._fixture_teardown

    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(3):
            try:
                return real(self)
            except Exception as exc:
                if attempt == 2 or "deadlock detected" not in f"{exc} {exc.__cause__}":
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[method-assign]
    yield
    TransactionTestCase._fixture_teardown = real  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def workers(django_db_setup, django_db_blocker) -> Iterator[Workers]:
    """Two real Celery worker processes (threads pool) on the test database."""
    with django_db_blocker.unblock():
        url = _test_database_url()
    pool = Workers(url)
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture
def redis_client():
    from objects.signals.notify import client

    return client()


@pytest.fixture
def live(workers, django_db_reset_sequences, redis_client) -> Iterator[Workers]:
    """Committed data and real workers (restarted if a test left one dead); afterwards the workers are let
    go quiet, so that flushing the database does not deadlock against a drain still in flight.

    Sequences are reset on flush so content types get the same ids again: the session's web server caches
    them (ContentType cache), and a stale id breaks the admin log's foreign key."""
    for index, proc in enumerate(workers.procs):
        if proc.poll() is not None:
            workers.start_one(index)
    workers.wait_ready()
    yield workers
    settle(redis_client)


@pytest.fixture(scope="session")
def web_server(django_db_setup, django_db_blocker) -> Iterator[WebServer]:
    """The real web server serving the project on the test database (session scoped)."""
    with django_db_blocker.unblock():
        url = _test_database_url()
    server = WebServer(url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_web(live, web_server) -> WebServer:
    """Workers, committed data and a real web server: for end-to-end HTTP tests."""
    return web_server
