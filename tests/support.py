"""What the tests share beyond fixtures: the real processes they start (Celery workers, the web server), the
test database's URL, waiting for the stack to settle, and small helpers (`wait_for`, `threaded_call`).
tests/conftest.py builds its fixtures on these; a test imports them from here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from stack import web_command  # noqa: E402


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true (True), or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def threaded_call(*args: Any, **kwargs: Any) -> Any:
    """`objects.call` from a test's own thread, which closes that thread's database connections afterwards."""
    from django.db import connections

    import objects

    try:
        return objects.call(*args, **kwargs)
    finally:
        connections.close_all()


class Workers:
    """Real `celery worker` processes consuming every partition queue; can be killed and restarted."""

    def __init__(
        self, database_url: str, count: int = 2, concurrency: int = 4, env: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.env = env or {}
        self.count = count
        self.concurrency = concurrency
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        self.logdir = Path(os.environ.get("DVO_TEST_TMP", "/tmp")) / "worker-logs"
        self.logdir.mkdir(parents=True, exist_ok=True)

    def command(self, index: int, name: str) -> list[str]:
        from objects.routing import SWEEP_QUEUE, all_queues

        queues = ",".join([*all_queues(), SWEEP_QUEUE])
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queues,
            "--pool",
            "threads",
            "-c",
            str(self.concurrency),
            "-n",
            name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ]

    def start(self) -> None:
        for index in range(self.count):
            self.start_one(index)
        self.wait_ready()

    def start_one(self, index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "DATABASE_URL": self.database_url, **self.env}
        log = open(self.logdir / f"worker{index}.log", "ab")  # noqa: SIM115
        name = f"test{index}-{time.time_ns()}@{socket.gethostname()}"
        proc = subprocess.Popen(
            self.command(index, name), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if index < len(self.procs):
            self.procs[index], self.names[index] = proc, name
        else:
            self.procs.append(proc)
            self.names.append(name)
        return proc

    def wait_ready(self, timeout: float = 30.0) -> None:
        from objects.worker.heartbeat import live_workers

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = set(live_workers())
            if all(name in live for proc, name in zip(self.procs, self.names, strict=True) if proc.poll() is None):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Celery workers did not answer within {timeout}s; see {self.logdir}")

    def dead(self) -> list[str]:
        """The workers that exited by themselves, each with the last lines of its log."""
        dead = []
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                tail = (self.logdir / f"worker{index}.log").read_text(errors="replace").splitlines()[-15:]
                dead.append(f"worker{index} exited with {proc.returncode}: " + "\n".join(tail))
        return dead

    def kill(self, index: int = 0, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[index]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)

    def restart(self, index: int = 0) -> None:
        self.kill(index)
        self.start_one(index)
        self.wait_ready()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            reap(proc, timeout=3)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a process group that was asked to stop; kill it when it does not within `timeout`."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _test_database_url() -> str:
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.exit("The suite needs PostgreSQL: run it with `make test` (it starts one).", returncode=2)
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def settle(redis_client, timeout: float = 15.0, quiet: float = 0.3) -> None:
    """Wait until no doorbell is queued, no partition's drain is running or lingering (they hold the
    partition's counter) and no other database session is inside a transaction for `quiet` seconds, so the
    test database can be flushed without a deadlock against a worker still draining, and the next test's
    calls are not taken by a drain left over from this one."""
    from django.db import connection, connections

    from objects.routing import all_queues

    queues = all_queues()
    quiet_since = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            queued = sum(redis_client.llen(name) for name in queues)
            queued += len(redis_client.keys("objects:pbell:*"))
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
                busy = cursor.fetchone()[0]
        except Exception:
            connections.close_all()
            queued, busy = 1, 1
        if queued or busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        time.sleep(0.05)


class WebServer:
    """The production web server (scripts/stack.py `web_command`: uvicorn serving config.asgi) on a free port."""

    def __init__(self, database_url: str, *, workers: int | None = None) -> None:
        self.database_url = database_url
        self.workers = workers  # processes; None: the production default (one)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": self.database_url}
        logdir = Path(os.environ.get("DVO_TEST_TMP", "/tmp"))
        log = open(logdir / "web.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            web_command("127.0.0.1", self.port, workers=self.workers),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("the web server did not start; see web.log in the test temp folder")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            reap(self.proc, timeout=5)


@contextlib.contextmanager
def key_row_held(instance_pk: int, timeout: float = 30.0) -> Iterator[threading.Thread]:
    """Hold a key's row lock from another connection (as a running drain does) until the block ends."""
    from django.db import connections, transaction

    from objects.models import Instance

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Instance.objects.select_for_update().get(pk=instance_pk)
                locked.set()
                release.wait(timeout)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), "the row lock was not taken"
        yield holder
    finally:
        release.set()
        holder.join(timeout)
