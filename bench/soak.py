"""`make soak`: minutes of mixed load through the HTTP ingress with periodic worker SIGKILLs, then the invariants.

Starts its own stack (scripts/stack.py): PostgreSQL, Redis, the web server (uvicorn), N Celery workers and
celery beat (the sweeper). Client threads call and send `Recorder.append` over many keys (each key's values in order,
one request at a time per key) and read with the shared `items`. Every `--kill-every` seconds one worker other
than worker0 is SIGKILLed and started again; worker0 is never killed, so its memory over the whole run is
meaningful. At the end: every accepted invocation succeeded exactly once and each key's state equals its
accepted values in acceptance order (tests/faults/model.py), throughput per interval, and the RSS of every
process at start and end. Usage: python bench/soak.py [--minutes 10] [--kill-every 30] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from stack import PYTHON, Stack, free_port, say, wait_port, web_command  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    p.add_argument("--kill-every", type=float, default=30.0, help="seconds between worker SIGKILLs (default 30)")
    p.add_argument("--workers", type=int, default=3, help="Celery worker processes (default 3; worker0 is spared)")
    p.add_argument("--threads", type=int, default=12, help="client threads (default 12)")
    p.add_argument("--keys", type=int, default=120, help="keys of the load (default 120)")
    p.add_argument("--call-share", type=float, default=0.3, help="share of calls among writes (default 0.3)")
    p.add_argument("--interval", type=float, default=30.0, help="seconds per throughput row (default 30)")
    p.add_argument("--json", default=str(ROOT / "var" / "soak.json"), help="where to write the figures")
    return p.parse_args(argv)


# -- processes and memory -----------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def memory(named: dict[str, int]) -> dict[str, dict]:
    """RSS in KiB of every process of the stack (each named root and its descendants, by pid) and of this driver."""
    tree = _children()
    out: dict[str, dict] = {"driver": {"rss": _rss_kb(os.getpid()) or 0, "cmd": "bench/soak.py"}}
    for name, root in named.items():
        pending = [root]
        while pending:
            pid = pending.pop()
            rss = _rss_kb(pid)
            cmd = _cmd(pid)
            if rss and name == "postgres" and "127.0.0.1(" in cmd:
                # client backends come and go with connections: one aggregate row (count and total)
                backends = out.setdefault("postgres backends (total)", {"rss": 0, "cmd": "", "count": 0})
                backends["rss"] += rss
                backends["count"] += 1
                backends["cmd"] = f"{backends['count']} client backends"
            elif rss:
                out[name if pid == root else f"{name}/{pid}"] = {"rss": rss, "cmd": cmd}
            pending.extend(tree.get(pid, []))
    return out


# -- the stack ----------------------------------------------------------------------------------------------
class SoakStack:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack, self.args = stack, args
        self.logs = stack.tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        self.roots: dict[str, int] = {}

    def start(self) -> str:
        say("starting PostgreSQL and Redis (loopback)")
        database_url = self.stack.start_postgres()
        redis_url = self.stack.start_redis()
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "OBJECTS_TEST_OBJECTS": "1",
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "SECRET_KEY": os.environ.get("SECRET_KEY") or os.urandom(32).hex(),  # DEBUG is off
                "LOG_LEVEL": "WARNING",
                "OBJECTS_LOG_LEVEL": "WARNING",
                "OBJECTS_SWEEP_INTERVAL": "5",
                "PYTHONUNBUFFERED": "1",
            }
        )
        say("migrating the database")
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        for index in range(self.args.workers):
            self.start_worker(index)
        beat = self.stack.spawn(
            "beat",
            [PYTHON, "-m", "celery", "-A", "config", "beat", "-s", str(self.stack.tmp / "beat-schedule")]
            + ["-l", "warning"],
            log=self.logs / "beat.log",
        )
        port = free_port()
        web = self.stack.spawn("web", web_command("127.0.0.1", port), log=self.logs / "web.log")
        wait_port(port, what="the web server")
        self.roots.update(
            {
                "web": web.pid,
                "beat": beat.pid,
                "postgres": self._pid_of("postgres"),
                "redis": self._pid_of("redis"),
            }
        )
        return f"http://127.0.0.1:{port}"

    def _pid_of(self, name: str) -> int:
        return next(proc.pid for n, proc in self.stack.procs if n == name)

    def start_worker(self, index: int) -> None:
        from objects.routing import all_queues

        name = f"soak{index}-{time.time_ns()}@{socket.gethostname()}"
        proc = self.stack.spawn(
            f"worker{index}",
            [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", ",".join([*all_queues(), "objects.sweeper"])]
            + ["--pool", "threads", "-c", "4", "-n", name, "--without-gossip", "--without-mingle"]
            + ["--without-heartbeat", "-l", "warning"],
            log=self.logs / f"worker{index}.log",
        )
        if index < len(self.workers):
            self.workers[index], self.names[index] = proc, name
        else:
            self.workers.append(proc)
            self.names.append(name)
        self.roots[f"worker{index}"] = proc.pid

    def kill_worker(self, index: int) -> None:
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(timeout=10)
        self.start_worker(index)

    def wait_workers(self, timeout: float = 90.0) -> None:
        from objects.worker.heartbeat import live_workers

        deadline = time.monotonic() + timeout
        while not set(self.names) <= set(live_workers()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start; see {self.logs}")
            time.sleep(0.2)


def staff_token() -> str:
    from django.contrib.auth import get_user_model
    from django.db import connections
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="soak", defaults={"is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)
    connections.close_all()
    return token.key


# -- throughput ---------------------------------------------------------------------------------------------
def throughput(load, started_wall: float, interval: float) -> list[dict]:
    """Per interval: requests accepted (client side), invocations finished (database side), call latency."""
    from objects.models import Invocation, Status

    finished = Invocation.objects.filter(
        type_name="Recorder", key__startswith="soak-", status=Status.SUCCEEDED
    ).values_list("finished_at", flat=True)
    rows: dict[int, dict] = {}
    for at in finished:
        row = rows.setdefault(int((at.timestamp() - started_wall) // interval), {"accepted": 0, "latencies": []})
        row["finished"] = row.get("finished", 0) + 1
    for attempt in load.attempts:
        row = rows.setdefault(int((attempt.started - load.started) // interval), {"accepted": 0, "latencies": []})
        row["accepted"] += attempt.accepted
        if attempt.kind == "call" and attempt.outcome == "returned":
            row["latencies"].append(attempt.ended - attempt.started)
    table = []
    for index in sorted(rows):
        row = rows[index]
        lat = sorted(row["latencies"])
        table.append(
            {
                "from_s": index * interval,
                "accepted_per_s": round(row["accepted"] / interval, 1),
                "finished_per_s": round(row.get("finished", 0) / interval, 1),
                "call_p50_ms": round(lat[len(lat) // 2] * 1000) if lat else None,
                "call_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000) if lat else None,
            }
        )
    return table


def reads(base_url: str, token: str, keys: list[str], stop: threading.Event, counter: list[int]) -> None:
    """A shared-handler reader next to the writers (shared reads never wait for the key)."""
    import httpx

    with httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token}"}, timeout=60) as client:
        rng = random.Random(7)
        while not stop.is_set():
            try:
                response = client.post(f"/ingress/Recorder/{rng.choice(keys)}/items")
                counter[0 if response.status_code == 200 else 1] += 1
            except Exception:  # noqa: BLE001 - counted, the soak goes on
                counter[1] += 1


def main(argv: list[str]) -> int:
    args = parse(argv)
    stack = Stack()
    try:
        soak = SoakStack(stack, args)
        base_url = soak.start()
        from tests.faults.model import HttpSubmit, Load, check_invariants, settle

        token = staff_token()
        soak.wait_workers()
        say(
            f"load for {args.minutes:g} min: {args.threads} writers over {args.keys} keys, 1 reader, a worker "
            f"SIGKILL every {args.kill_every:g}s"
        )
        submit = HttpSubmit(base_url, token)
        load = Load(prefix="soak", keys=args.keys, threads=args.threads, call_share=args.call_share, submit=submit)
        stop_reads, read_counts = threading.Event(), [0, 0]
        reader = threading.Thread(target=reads, args=(base_url, token, load.keys, stop_reads, read_counts))
        started_wall = time.time()
        load.start()
        reader.start()
        time.sleep(min(20.0, args.minutes * 60 / 10))
        memory_start = memory(soak.roots)
        kills, rng = [], random.Random(1)
        end = load.started + args.minutes * 60
        next_kill = time.monotonic() + args.kill_every
        next_note = time.monotonic() + 60
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_kill and args.workers > 1:
                index = rng.randrange(1, args.workers)
                soak.kill_worker(index)
                kills.append({"at_s": round(time.monotonic() - load.started, 1), "worker": index})
                next_kill += args.kill_every
            if time.monotonic() >= next_note:
                next_note += 60
                done = sum(a.accepted for a in load.attempts)
                say(f"{time.monotonic() - load.started:.0f}s: {done} accepted, {len(kills)} kills")
        memory_end = memory(soak.roots)
        stop_reads.set()
        load.stop()
        reader.join(timeout=60)
        say("load stopped; waiting for every accepted invocation to finish")
        settle_s = settle("soak", timeout=300)
        say("checking the invariants")
        figures = check_invariants(load)
        report = {
            "minutes": args.minutes,
            "kills": kills,
            "figures": figures,
            "reads": {"ok": read_counts[0], "failed": read_counts[1]},
            "http_statuses": submit.statuses,
            "settled_s": round(settle_s, 1),
            "throughput": [
                row for row in throughput(load, started_wall, args.interval) if row["from_s"] < args.minutes * 60
            ],
            "killed_workers": sorted({f"worker{k['worker']}" for k in kills}),
            "memory_kib": {
                name: {
                    "start": memory_start.get(name, {}).get("rss"),
                    "end": memory_end.get(name, {}).get("rss"),
                    "count_start": memory_start.get(name, {}).get("count"),
                    "count_end": memory_end.get(name, {}).get("count"),
                    "cmd": (memory_end.get(name) or memory_start.get(name))["cmd"],
                }
                for name in sorted(set(memory_start) | set(memory_end))
            },
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        print_report(report)
        say(f"invariants hold; figures written to {args.json}")
        return 0
    except AssertionError as exc:
        say(f"INVARIANT VIOLATED: {exc}")
        return 1
    finally:
        say("stopping the stack")
        stack.stop()


def print_report(report: dict) -> None:
    print(f"\nkills: {len(report['kills'])} {[k['at_s'] for k in report['kills']]}")
    print(f"figures: {report['figures']}; reads {report['reads']}; HTTP {report['http_statuses']}")
    print("\n| from (s) | accepted/s | finished/s | call p50 (ms) | call p99 (ms) |\n|---|---|---|---|---|")
    for row in report["throughput"]:
        print(
            f"| {row['from_s']:g} | {row['accepted_per_s']} | {row['finished_per_s']} | {row['call_p50_ms']} "
            f"| {row['call_p99_ms']} |"
        )
    print("\n| process | RSS start (MiB) | RSS end (MiB) | growth | command |\n|---|---|---|---|---|")
    killed = set(report["killed_workers"])
    for name, m in report["memory_kib"].items():
        start, end = m["start"], m["end"]
        if name in killed:
            growth = "restarted by the kills"
        elif m.get("count_start") and m.get("count_end") and start and end:
            per_start, per_end = start / m["count_start"], end / m["count_end"]
            growth = f"{m['count_start']} -> {m['count_end']} backends, "
            growth += f"{per_start / 1024:.1f} -> {per_end / 1024:.1f} MiB each"
        elif start and end:
            growth = f"{(end - start) / 1024:+.1f} MiB ({(end - start) / start:+.0%})"
        else:
            growth = "started or ended during the run"
        start_text = f"{start / 1024:.1f}" if start else "-"
        end_text = f"{end / 1024:.1f}" if end else "-"
        print(f"| {name} | {start_text} | {end_text} | {growth} | {m['cmd'][:50]} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
