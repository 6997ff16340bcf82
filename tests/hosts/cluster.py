"""Hosts on one machine: Linux network namespaces on a bridge of their own, with the project's processes in them.

One host holds PostgreSQL, Redis and `celery beat`; one the web server (scripts/stack.py `web_command`); two
hold a Celery worker each (tests/support.py `Workers.command`). The bridge and every address are in
198.18.0.0/15 (the range set aside for network tests) and nothing routes out of it: no namespace has a default
route, so the traffic stays in this machine's own namespaces. The test process reaches the hosts through the
bridge's own address. Needs root, `ip` and `nft`.
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from stack import PYTHON, redis_binary, web_command  # noqa: E402

PREFIX = "dvoh"
PG_PORT, REDIS_PORT, WEB_PORT = 5432, 6379, 8000


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def unavailable() -> str | None:
    """Why hosts cannot be built here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "building hosts (network namespaces, veth pairs, a bridge) needs root"
    if not shutil.which("ip"):
        return "the `ip` command (iproute2) is missing"
    if not shutil.which("nft"):
        return "the `nft` command is missing (scripts/ensure_netfilter.py installs Debian's nftables)"
    probe = f"{PREFIX}-probe{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    name: str  # short: it is part of interface names (at most 15 characters)
    address: str
    netns: str
    port: str  # the bridge side of the host's veth pair
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


class Network:
    """A bridge and namespaces on it; each host is a namespace with one veth pair into the bridge."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid() % 100000}"
        self.subnet = f"198.18.{10 + os.getpid() % 200}"
        self.bridge = f"{self.tag}br"
        self.gateway = f"{self.subnet}.1"  # the test process's own address, on the bridge
        self.hosts: dict[str, Host] = {}

    def up(self) -> None:
        clean_stale()
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")

    def add(self, name: str, number: int) -> Host:
        host = Host(name, f"{self.subnet}.{number}", f"{self.tag}-{name}", f"{self.tag}{name}")
        run("ip", "netns", "add", host.netns)
        run("ip", "-n", host.netns, "link", "set", "lo", "up")
        self.hosts[name] = host
        self.plug(host)
        return host

    def plug(self, host: Host) -> None:
        """(Re)connect the host: a new veth pair, its address, the bridge side up."""
        run("ip", "link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        run("ip", "link", "set", host.port, "master", self.bridge, "up")

    def unplug(self, host: Host) -> None:
        """The host's veth pair deleted: its packets go nowhere, nothing tells the others."""
        run("ip", "link", "del", host.port)

    def cut(self, host: Host) -> None:
        """The host's cable pulled: the bridge side of its veth down (the pair stays)."""
        run("ip", "link", "set", host.port, "down")

    def mend(self, host: Host) -> None:
        run("ip", "link", "set", host.port, "up")

    def block(self, host: Host, address: str, port: int) -> None:
        """Drop everything the host sends to address:port, and what it receives from there (nft, in the host's
        own namespace): that service is unreachable from this host only."""
        rules = (
            f"table inet {PREFIX} {{\n"
            f"  chain out {{ type filter hook output priority 0; ip daddr {address} tcp dport {port} drop; }}\n"
            f"  chain in {{ type filter hook input priority 0; ip saddr {address} tcp sport {port} drop; }}\n"
            "}\n"
        )
        subprocess.run(["ip", "netns", "exec", host.netns, "nft", "-f", "-"], input=rules, text=True, check=True)

    def unblock(self, host: Host) -> None:
        run("ip", "netns", "exec", host.netns, "nft", "delete", "table", "inet", PREFIX, check=False)

    def down(self) -> None:
        for host in self.hosts.values():
            run("ip", "netns", "del", host.netns, check=False)
            run("ip", "link", "del", host.port, check=False)
        run("ip", "link", "del", self.bridge, check=False)


def clean_stale() -> None:
    """Namespaces and bridges left by an earlier run that was killed (its process is gone)."""
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        tag = name.split("-")[0]
        if name.startswith(PREFIX) and tag[len(PREFIX) :].isdigit() and not _alive(int(tag[len(PREFIX) :])):
            run("ip", "netns", "del", name, check=False)
    for line in run("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        digits = name[len(PREFIX) : -2]
        if name.startswith(PREFIX) and name.endswith("br") and digits.isdigit() and not _alive(int(digits)):
            run("ip", "link", "del", name, check=False)


def _alive(pid_tail: int) -> bool:
    """Some live process has a pid ending the way this tag does (pids are taken modulo 100000)."""
    return any(int(p) % 100000 == pid_tail for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid())


class Cluster:
    """The hosts with their processes: db (PostgreSQL, Redis, beat), web (uvicorn), w1 and w2 (Celery)."""

    def __init__(self, bound: float, sweep_interval: float = 1.0) -> None:
        self.net = Network()
        self.bound = bound
        self.sweep_interval = sweep_interval
        self.tmp = Path(tempfile.mkdtemp(prefix="dvo-hosts-"))
        self.logs = Path(os.environ.get("DVO_TEST_TMP", str(self.tmp))) / "hosts-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: list[subprocess.Popen[bytes]] = []

    # -- addresses -------------------------------------------------------------------------------------
    @property
    def db(self) -> Host:
        return self.net.hosts["db"]

    @property
    def web(self) -> Host:
        return self.net.hosts["web"]

    def worker(self, n: int) -> Host:
        return self.net.hosts[f"w{n}"]

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.db.address}:{PG_PORT}/hosts"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.db.address}:{REDIS_PORT}/0"

    @property
    def web_url(self) -> str:
        return f"http://{self.web.address}:{WEB_PORT}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "OBJECTS_HOST_LOSS_BOUND": str(self.bound),
            "OBJECTS_SWEEP_INTERVAL": str(self.sweep_interval),
            "OBJECTS_TEST_OBJECTS": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "ALLOWED_HOSTS": f"{self.web.address},127.0.0.1,localhost,testserver",
        }

    # -- start and stop --------------------------------------------------------------------------------
    def up(self) -> None:
        self.net.up()
        for number, name in enumerate(("db", "web", "w1", "w2"), start=2):
            self.net.add(name, number)
        self.start_postgres()
        self.start_redis()
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env(), check=True)
        self.spawn(self.db, "beat", self.beat_command())
        self.spawn(self.web, "web", web_command(self.web.address, WEB_PORT, workers=1))
        for n in (1, 2):
            self.start_worker(n)
        wait_port(self.web.address, WEB_PORT, "the web server")

    def spawn(self, host: Host, name: str, argv: list[str], *, user: list[str] | None = None) -> None:
        log = open(self.logs / f"{host.name}-{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *(user or []), *argv],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        host.procs[name] = proc
        self.started.append(proc)

    def start_postgres(self) -> None:
        data = self.tmp / "pgdata"
        shutil.chown(self.tmp, "postgres")
        bindir = Path(os.environ.get("DVO_PG_BINDIR") or "/usr/lib/postgresql/15/bin")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {PG_PORT}\nlisten_addresses = '{self.db.address}'\nunix_socket_directories = '{self.tmp}'\n"
                "fsync = off\nsynchronous_commit = off\nmax_connections = 200\n"
            )
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.net.subnet}.0/24 trust\n")
        self.spawn(self.db, "postgres", [str(bindir / "postgres"), "-D", str(data)], user=as_postgres)
        wait_port(self.db.address, PG_PORT, "PostgreSQL")
        createdb = [str(bindir / "createdb"), "-h", self.db.address, "-p", str(PG_PORT), "-U", "postgres", "hosts"]
        deadline = time.monotonic() + 30
        while (made := run(*createdb, check=False)).returncode != 0:  # the port opens before it takes sessions
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {made.stderr.strip()}")
            time.sleep(0.2)

    def start_redis(self) -> None:
        argv = [redis_binary(), "--port", str(REDIS_PORT), "--bind", self.db.address, "--protected-mode", "no"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.tmp), "--loglevel", "warning"]
        self.spawn(self.db, "redis", argv)
        wait_port(self.db.address, REDIS_PORT, "Redis")

    def beat_command(self) -> list[str]:
        return [PYTHON, "-m", "celery", "-A", "config", "beat", "-l", "warning", "-s", str(self.tmp / "beat-schedule")]

    def worker_name(self, n: int) -> str:
        return f"w{n}@{self.net.tag}"

    def start_worker(self, n: int) -> None:
        from tests.support import Workers

        argv = Workers(self.database_url, concurrency=4).command(n, self.worker_name(n))
        self.spawn(self.worker(n), "worker", argv)

    def kill_host(self, n: int) -> None:
        """Remove worker host n entirely: its veth pair deleted first (nothing it sends gets out, no FIN, no
        RST), then every process in it SIGKILLed."""
        host = self.worker(n)
        self.net.unplug(host)
        for proc in host.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        host.procs.clear()

    def revive_host(self, n: int) -> None:
        host = self.worker(n)
        self.net.plug(host)
        self.start_worker(n)

    def down(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.net.down()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_port(address: str, port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open {address}:{port} within {timeout:.0f}s")
