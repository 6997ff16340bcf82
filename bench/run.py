"""`make bench` / `make bench-compare`: start the stack, run every workload, write the results table and chart.

`make bench` measures this project: PostgreSQL, Redis, Celery workers, the web server (uvicorn), all on loopback,
calls through the real ingress with token authentication. `make bench-compare` (--compare) also installs a
Restate server from the npm registry into var/restate/ and the Restate Python SDK into a virtualenv under
var/, serves the same object with hypercorn, and runs the same workloads against it in the same run,
interleaved, then prints the ratio of this project to Restate for each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from stack import PYTHON, Stack, free_port, say, services, wait_port, web_command  # noqa: E402

from bench.loadgen import WORKLOADS, Result, Target, run_workload, warm_up  # noqa: E402

VAR = ROOT / "var"
RESULTS = ROOT / "bench" / "results"
CHART = ROOT / "docs" / "images" / "bench.png"
RESTATE_PREFIX = VAR / "restate"
RESTATE_VENV = VAR / "restate-py"
RESTATE_PACKAGES = ["restate-sdk==1.3.0", "hypercorn==0.18.0"]
RESTATE_NPM = "@restatedev/restate-server@1.7.12"  # the version the published comparisons used


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", action="store_true", help="also run the workloads against a Restate server")
    p.add_argument("--rounds", type=int, default=3, help="rounds per workload, fewer if the time budget runs out")
    p.add_argument("--budget", type=float, default=None, help="seconds of measuring (default 420, 900 with --compare)")
    p.add_argument("--only", default="abcd", help="workloads to run, e.g. 'bc' (default: abcd)")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of each workload's calls (quick tries)")
    p.add_argument(
        "--workers", type=int, default=1, help="Celery worker processes, partition queues split among them (default 1)"
    )
    p.add_argument(
        "--pool", choices=["solo", "threads", "prefork"], default=None, help="Celery pool (default: make run's)"
    )
    p.add_argument("--worker-concurrency", type=int, default=None, help="pool size (default: make run's)")
    p.add_argument("--partitions", type=int, default=None, help="OBJECTS_PARTITIONS (default: the setting's, 8)")
    p.add_argument(
        "--server",
        choices=["uvicorn", "gunicorn"],
        default="uvicorn",
        help="web server: uvicorn serving config.asgi (production), or gunicorn gthread serving config.wsgi",
    )
    p.add_argument(
        "--web-workers", type=int, help="web server processes (default: make run's, one unless WEB_CONCURRENCY is set)"
    )
    p.add_argument(
        "--web-threads", type=int, default=16, help="threads per web process (OBJECTS_WEB_THREADS; gunicorn's gthread)"
    )
    p.add_argument("--sqlite", action="store_true", help="this project on SQLite, make run's default (no PostgreSQL)")
    p.add_argument("--fast-pg", action="store_true", help="PostgreSQL with fsync and synchronous_commit off")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    p.add_argument("--profile", metavar="DIR", help="py-spy flame graphs of a worker and the web server into DIR")
    p.add_argument(
        "--pg-stats",
        metavar="FILE",
        help="write PostgreSQL's statements by planning + execution time (pg_stat_statements) to FILE",
    )
    p.add_argument("--keep", action="store_true", help="print the URLs and wait for Enter before stopping")
    args = p.parse_args(argv)
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s) {''.join(sorted(unknown))}; choose from {''.join(WORKLOADS)}")
    return args


# -- this project -----------------------------------------------------------------------------------------
def start_ours(stack: Stack, args: argparse.Namespace, logs: Path) -> tuple[Target, dict]:
    say(f"starting {'Redis' if args.sqlite else 'PostgreSQL and Redis'} (loopback)")
    # With --pg-stats: the statements' figures, and PostgreSQL's log (copied to the run's logs at the end) with
    # the plan of every statement slower than 20 ms (auto_explain), checkpoints and autovacuum runs.
    stats = (
        "shared_preload_libraries = 'pg_stat_statements,auto_explain'\npg_stat_statements.track_planning = on\n"
        "auto_explain.log_min_duration = '20ms'\nauto_explain.log_buffers = on\nlogging_collector = on\n"
        "log_checkpoints = on\nlog_autovacuum_min_duration = 0\nlog_line_prefix = '%m [%p] '\n"
    )
    if args.sqlite:  # the default a newcomer's `make run` uses: SQLite (WAL, immediate transactions)
        database_url = f"sqlite:///{stack.tmp / 'bench.sqlite3'}"
    else:
        database_url = stack.start_postgres(extra_conf=stats if args.pg_stats else "")
        _tune_postgres(database_url, durable=not args.fast_pg, stats=bool(args.pg_stats))
    args.database_url = database_url
    redis_url = stack.start_redis()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OBJECTS_BENCH": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or os.urandom(32).hex(),  # DEBUG is off: a key of the run's own
        "PYTHONUNBUFFERED": "1",
        **({"OBJECTS_PARTITIONS": str(args.partitions)} if args.partitions else {}),
    }
    os.environ.update(env)
    say("migrating the database")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True, env=os.environ)
    import django

    django.setup()
    token = _bench_token()
    from objects import conf
    from objects.celery import DEFAULT_CONCURRENCY, DEFAULT_POOL

    port = free_port()
    # What `make run` starts (scripts/stack.py `services`); the options below only change it when given.
    commands = services("127.0.0.1", port, stack.tmp / "beat-schedule")
    names = []
    partitions = conf.get("OBJECTS_PARTITIONS")
    for index in range(args.workers):
        name = f"bench{index}-{os.getpid()}@{socket.gethostname()}"
        names.append(name)
        command = commands["worker"]
        if args.workers > 1 or args.pool or args.worker_concurrency:
            mine = range(index, partitions, args.workers)
            command = [PYTHON, str(ROOT / "manage.py"), "objects_worker", "--hostname", name]
            command += ["--partitions", ",".join(map(str, mine)), *([] if index == 0 else ["--no-sweeper"])]
            command += ["--concurrency", str(args.worker_concurrency)] if args.worker_concurrency else []
            command += ["--pool", args.pool] if args.pool else []
        else:
            command = [*command[: command.index("--hostname")], "--hostname", name]
        stack.spawn(f"worker{index}", command, log=logs / f"worker{index}.log")
    stack.spawn("beat", commands["sweeper"], log=logs / "beat.log")
    if args.server == "gunicorn":
        command = [PYTHON, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-k", "gthread"]
        args.web_workers = args.web_workers or 2  # gunicorn's own comparison point: two processes
        command += ["-w", str(args.web_workers), "--threads", str(args.web_threads), "--timeout", "120"]
        command += ["--keep-alive", "30"]
    else:
        command = commands["web"]
        if args.web_workers is not None:
            command = web_command("127.0.0.1", port, workers=args.web_workers)
    stack.spawn("web", command, log=logs / "web.log", env={"OBJECTS_WEB_THREADS": str(args.web_threads)})
    wait_port(port, what="the web server")
    _wait_workers(names)
    from django.conf import settings

    prefix = settings.OBJECTS_INGRESS_PREFIX.strip("/")
    target = Target("django", f"http://127.0.0.1:{port}/{prefix}", {"Authorization": f"Token {token}"})
    config = {
        "database": "SQLite (WAL, immediate transactions)"
        if args.sqlite
        else "PostgreSQL, "
        + ("fsync=off, synchronous_commit=off" if args.fast_pg else "fsync=on, synchronous_commit=on")
        + ", otherwise the server's defaults",
        "celery": f"{args.workers} worker(s), pool {args.pool or DEFAULT_POOL}"
        + ("" if args.pool == "solo" else f" x{args.worker_concurrency or DEFAULT_CONCURRENCY}")
        + ("" if args.workers > 1 or args.pool or args.worker_concurrency else " (make run's)"),
        "web": (
            f"uvicorn config.asgi, {_web_processes(command)} process(es), token calls on the event loop, "
            f"{args.web_threads} threads each for the rest"
            if args.server == "uvicorn"
            else f"gunicorn gthread, {args.web_workers} worker(s) x {args.web_threads} threads"
        ),
        "partitions": partitions,
    }
    return target, config


def _tune_postgres(database_url: str, *, durable: bool, stats: bool = False) -> None:
    """The throwaway cluster starts without fsync; the benchmark measures a durable commit, as Restate's is.
    Nothing else is tuned: what the engine needs of the server (lz4 for the state's values), its migrations set."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        if durable:
            conn.execute("ALTER SYSTEM SET fsync = on")
            conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")
        if stats:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _bench_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": False})
    token, _ = Token.objects.get_or_create(user=user)
    from django.db import connections

    connections.close_all()
    return token.key


def _wait_workers(names: list[str], timeout: float = 60.0) -> None:
    from objects.worker.heartbeat import live_workers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(names) <= set(live_workers()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"Celery workers did not start within {timeout:.0f}s; see the logs under var/bench/")


# -- Restate ----------------------------------------------------------------------------------------------
def install_restate() -> Path:
    """The Restate server binary (from the npm registry) and the SDK virtualenv, installed under var/ once."""
    binary = RESTATE_PREFIX / "node_modules" / "@restatedev" / f"restate-server-linux-{_arch()}" / "bin"
    binary = binary / "restate-server"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed, so the Restate server cannot be installed (apt-get install npm)")
        say(f"installing {RESTATE_NPM} into var/restate/ with npm")
        RESTATE_PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(RESTATE_PREFIX), RESTATE_NPM], check=True)
    if not binary.exists():
        raise RuntimeError(f"npm installed {RESTATE_NPM} but no server binary for this platform at {binary}")
    python = RESTATE_VENV / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import restate, hypercorn"], check=False).returncode:
        say("creating var/restate-py with the Restate Python SDK and hypercorn")
        subprocess.run([sys.executable, "-m", "venv", str(RESTATE_VENV)], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *RESTATE_PACKAGES], check=True)
    return binary


def _arch() -> str:
    return {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())


def start_restate(stack: Stack, logs: Path) -> tuple[Target, dict]:
    binary = install_restate()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    ingress, admin, node, service = free_port(), free_port(), free_port(), free_port()
    data = stack.tmp / "restate-data"
    say(f"starting the Restate server ({version or 'unknown version'}) on loopback")
    stack.spawn(
        "restate",
        [str(binary), "--no-logo", "--base-dir", str(data), "--listen-mode", "tcp"],
        env={
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_BIND_IP": "127.0.0.1",
            "RESTATE_INGRESS__BIND_PORT": str(ingress),
            "RESTATE_ADMIN__BIND_PORT": str(admin),
            "RESTATE_BIND_PORT": str(node),
            "RESTATE_LOG_FILTER": "warn",
        },
        log=logs / "restate.log",
    )
    stack.spawn(
        "restate-service",
        [str(RESTATE_VENV / "bin" / "python"), str(ROOT / "bench" / "restate" / "service.py"), str(service)],
        log=logs / "restate-service.log",
    )
    wait_port(admin, timeout=60, what="Restate admin")
    wait_port(ingress, timeout=60, what="Restate ingress")
    wait_port(service, timeout=30, what="Restate SDK service (hypercorn)")
    _register(admin, service)
    sdk = subprocess.run(
        [str(RESTATE_VENV / "bin" / "python"), "-m", "pip", "show", "restate-sdk"], capture_output=True, text=True
    ).stdout
    sdk_version = next((line.split(":", 1)[1].strip() for line in sdk.splitlines() if line.startswith("Version")), "")
    config = {"server": version, "sdk": f"restate-sdk {sdk_version}, hypercorn (keep_alive_max_requests raised)"}
    return Target("restate", f"http://127.0.0.1:{ingress}"), config


def _register(admin: int, service: int, timeout: float = 60.0) -> None:
    body = json.dumps({"uri": f"http://127.0.0.1:{service}"}).encode()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"http://127.0.0.1:{admin}/deployments", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status in (200, 201):
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"could not register the SDK service with the Restate admin API: {last}")


# -- the run ----------------------------------------------------------------------------------------------
def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """(parent pid, user+system ticks) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def machine_ticks() -> tuple[int, int]:
    """(steal, total) CPU ticks of the whole machine so far, from the first line of /proc/stat. Steal is time
    the hypervisor gave another guest while this one wanted to run: the machine's speed moves with it."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total > 0 else None


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of process trees (a root pid and all its descendants)."""
    table = _cpu_ticks()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tick = os.sysconf("SC_CLK_TCK")
    totals = {}
    for group, roots in groups.items():
        seen, stack, ticks = set(), list(roots), 0
        while stack:
            pid = stack.pop()
            if pid in seen or pid not in table:
                continue
            seen.add(pid)
            ticks += table[pid][1]
            stack.extend(children.get(pid, []))
        totals[group] = ticks / tick
    totals["loadgen"] = sum(os.times()[:2])
    return totals


def cpu_groups(stack: Stack) -> dict[str, dict[str, list[int]]]:
    """Which started processes belong to which system and which component of it."""
    groups: dict[str, dict[str, list[int]]] = {"django": {}, "restate": {}}
    for name, proc in stack.procs:
        if name.startswith("py-spy"):
            continue
        system = "restate" if name.startswith("restate") else "django"
        component = "worker" if name.startswith("worker") else name
        groups[system].setdefault(component, []).append(proc.pid)
    return groups


async def measure(
    targets: list[Target], args: argparse.Namespace, run_id: str, groups: dict[str, dict[str, list[int]]]
) -> list[Result]:
    """Every round runs each workload on every system back to back (interleaved); the lead alternates."""
    for target in targets:
        await warm_up(target, run_id=f"{run_id}-warm")
    results: list[Result] = []
    started = time.monotonic()
    budget = args.budget or (900.0 if len(targets) > 1 else 420.0)
    for round_index in range(args.rounds):
        round_started = time.monotonic()
        for name in args.only:
            workload = WORKLOADS[name].scaled(args.scale)
            order = targets if (round_index + "abcd".index(name)) % 2 == 0 else list(reversed(targets))
            for target in order:
                watched = args.pg_stats and target.name == "django"
                pg_before = pg_snapshot(args.database_url) if watched else None
                before, machine_before = cpu_seconds(groups[target.name]), machine_ticks()
                result = await run_workload(
                    target, workload, run_id=f"{run_id}-r{round_index}", time_limit=180.0, poll_limit=180.0
                )
                after = cpu_seconds(groups[target.name])
                result.steal_pct = steal_share(machine_before, machine_ticks())
                result.cpu_ms_per_call = {k: round((after[k] - before[k]) * 1000 / max(result.ok, 1), 2) for k in after}
                result.cpu_ms_per_call["total"] = round(sum(result.cpu_ms_per_call.values()), 2)
                print(f"   round {round_index + 1}  {result.row()}", flush=True)
                print(f"            CPU ms per call: {result.cpu_ms_per_call}; steal {result.steal_pct} %", flush=True)
                if pg_before is not None:
                    change = pg_change(pg_before, pg_snapshot(args.database_url))
                    cpu = result.cpu_ms_per_call.get("postgres")
                    PG_ROUNDS.append((round_index + 1, name, result.ops, cpu, change))
                results.append(result)
        now = time.monotonic()
        if round_index + 1 < args.rounds and now + (now - round_started) - started > budget:
            say(f"stopping after {round_index + 1} round(s): another would exceed the {budget:.0f}s time budget")
            break
    return results


def summarize(results: list[Result]) -> dict[tuple[str, str], Result]:
    """Per (workload, system), the round with the median throughput."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.workload, result.system), []).append(result)
    summary = {}
    for key, rounds in groups.items():
        rounds.sort(key=lambda r: r.ops)
        median = rounds[(len(rounds) - 1) // 2]
        median.correct = all(r.correct for r in rounds)
        if not median.correct:
            median.check = "; ".join(r.check for r in rounds if not r.correct)
        summary[key] = median
    return summary


def table(summary: dict[tuple[str, str], Result], systems: list[str]) -> str:
    lines = [
        "| workload | system | calls | errors | seconds | ops/s | p50 ms | p95 ms | p99 ms | CPU ms/call | check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in WORKLOADS:
        for system in systems:
            r = summary.get((name, system))
            if r is None:
                continue
            check = "exact" if r.correct else f"**wrong**: {r.check}"
            lines.append(
                f"| {name}. {WORKLOADS[name].title} | {system} | {r.calls} | {r.errors} | {r.seconds:.2f} | "
                f"{r.ops:.0f} | {r.p50:.1f} | {r.p95:.1f} | {r.p99:.1f} | {r.cpu_ms_per_call.get('total', 0):.1f} | "
                f"{check} |"
            )
    if "restate" in systems and "django" in systems:
        lines += [
            "",
            "Ratio this project / Restate (throughput: above 1 is faster; latency: below 1 is faster):",
            "",
            "| workload | ops/s | p50 | p95 | p99 |",
            "|---|---|---|---|---|",
        ]
        for name in WORKLOADS:
            ours, theirs = summary.get((name, "django")), summary.get((name, "restate"))
            if ours is None or theirs is None:
                continue
            cells = [_ratio(ours.ops, theirs.ops)] + [
                _ratio(getattr(ours, f), getattr(theirs, f)) for f in ("p50", "p95", "p99")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def machine() -> dict:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    cpu = ""
    try:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in line
            ),
            "",
        )
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory": memory, "cpu": cpu, "python": python_build()}


def python_build() -> str:
    """The interpreter both systems' Python processes run on (the Restate SDK's virtualenv is made from it) and
    how its executable is linked: the same code ran 5-10 % faster in one process on the distribution's
    statically linked python3.11 than on pyenv's default build with a shared libpython
    (docs/dev/benchmark-history.md)."""
    try:
        shared = "libpython" in Path("/proc/self/maps").read_text()
    except OSError:
        return f"{platform.python_version()} ({sys.base_prefix})"
    return f"{platform.python_version()} ({sys.base_prefix}, libpython {'shared' if shared else 'static'})"


def write_results(results: list[Result], summary: dict, systems: list[str], info: dict, text: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "info": info,
        "summary": [vars(r) for r in summary.values()],
        "rounds": [vars(r) for r in results],
    }
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    header = [
        "# Latest benchmark results",
        "",
        f"Run {info['when']} with `{info['command']}`; {info['rounds']} round(s), the median round by throughput"
        + (" (of two, the slower)." if info["rounds"] == 2 else "."),
        "",
        f"Machine: {info['machine']['cores']} cores, {info['machine']['memory']}, {info['machine']['cpu']}; Python "
        f"{info['machine']['python']}; load "
        f"average (1, 5, 15 min) {info.get('load_before')} before and {info.get('load_after')} after the run.",
        "",
    ]
    for system, config in info["systems"].items():
        header.append(f"- {system}: " + "; ".join(f"{k} {v}" for k, v in config.items()))
    steals = [f"{r.workload} {r.system} {r.steal_pct} %" for r in results if r.steal_pct is not None]
    if steals:
        header += ["", "Steal (the hypervisor's share of the machine's CPU time while each ran), in run order: "]
        header[-1] += ", ".join(steals) + "."
    (RESULTS / "latest.md").write_text("\n".join(header) + "\n\n" + text + "\n")


def main(argv: list[str]) -> int:
    args = parse(argv)
    run_id = time.strftime("%Y%m%d%H%M%S")
    logs = VAR / "bench" / run_id
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    info: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python bench/run.py " + " ".join(argv),
        "rounds": args.rounds,
        "machine": machine(),
        "systems": {},
    }
    try:
        targets = []
        target, config = start_ours(stack, args, logs)
        targets.append(target)
        info["systems"]["django"] = config
        if args.compare:
            try:
                restate, config = start_restate(stack, logs)
                targets.append(restate)
                info["systems"]["restate"] = config
            except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                say(f"Restate could not be installed or started ({exc}); measuring this project only")
                info["restate_error"] = str(exc)
        profilers = _start_profilers(stack, args, logs) if args.profile else []
        say(f"running workloads {args.only} x {args.rounds} round(s) on {', '.join(t.name for t in targets)}")
        info["load_before"] = [round(x, 2) for x in os.getloadavg()]
        results = asyncio.run(measure(targets, args, run_id, cpu_groups(stack)))
        info["rounds"] = max(sum(1 for r in results if r.workload == w and r.system == "django") for w in args.only)
        info["load_after"] = [round(x, 2) for x in os.getloadavg()]
        if args.pg_stats:
            _write_pg_stats(args.database_url, Path(args.pg_stats))
        for proc in profilers:
            proc.send_signal(2)
            proc.wait(timeout=60)
        if args.keep:
            input(f"stack is up: {[t.base_url for t in targets]}; press Enter to stop ")
    except KeyboardInterrupt:
        return 130
    finally:
        say("stopping the stack")
        if args.pg_stats and getattr(stack, "pg", None):
            shutil.copytree(stack.pg["data"] / "log", logs / "postgres", dirs_exist_ok=True)
        stack.stop()
    systems = [t.name for t in targets]
    summary = summarize(results)
    text = table(summary, systems)
    print("\n" + text + "\n")
    write_results(results, summary, systems, info, text)
    if not args.no_chart:
        from bench.chart import draw

        draw(summary, systems, CHART)
        say(f"chart written to {CHART.relative_to(ROOT)}")
    say(f"results written to {RESULTS.relative_to(ROOT)}/latest.md and latest.json; logs in {logs.relative_to(ROOT)}")
    return 0 if all(r.correct for r in summary.values()) else 1


# With --pg-stats, what PostgreSQL did during each of this project's rounds: (round, workload, ops/s, its CPU ms
# per call, pg_change's text). A round much dearer than its neighbours shows which statement grew, whether its
# plan was made again, and whether a checkpoint or an autovacuum ran meanwhile.
PG_ROUNDS: list[tuple[int, str, float, float | None, str]] = []


def pg_snapshot(database_url: str) -> dict[str, Any]:
    """pg_stat_statements by statement, the checkpointer's and autovacuum's counters, now."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        statements = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT queryid, calls, plans, total_plan_time + total_exec_time, shared_blks_hit + shared_blks_read, "
                "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements"
            )
        }
        checkpoints = conn.execute(
            "SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint + buffers_backend FROM pg_stat_bgwriter"
        ).fetchone()
        vacuums = conn.execute(
            "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0), coalesce(sum(n_dead_tup), 0) "
            "FROM pg_stat_user_tables"
        ).fetchone()
    return {"statements": statements, "checkpoints": checkpoints, "vacuums": vacuums}


def pg_change(before: dict[str, Any], after: dict[str, Any], top: int = 5) -> str:
    """The statements that took the most time between two snapshots (calls, plans made, ms, blocks per call),
    and the checkpoints and autovacuum runs between them."""
    grown = []
    for queryid, (calls, plans, ms, blocks, text) in after["statements"].items():
        was = before["statements"].get(queryid, (0, 0, 0.0, 0, text))
        if calls > was[0]:
            n = calls - was[0]
            grown.append((ms - was[2], n, plans - was[1], (blocks - was[3]) / n, text))
    grown.sort(reverse=True)
    parts = [f"{ms:.0f} ms {n} calls {p} plans {blk:.0f} blk/call `{text}`" for ms, n, p, blk, text in grown[:top]]
    checkpoints = after["checkpoints"][0] - before["checkpoints"][0]
    buffers = after["checkpoints"][1] - before["checkpoints"][1]
    vacuums = after["vacuums"][0] - before["vacuums"][0]
    parts.append(f"checkpoints {checkpoints} ({buffers} buffers written), autovacuum/analyze runs {vacuums}")
    return "; ".join(parts)


def _write_pg_stats(database_url: str, path: Path) -> None:
    """PostgreSQL's statements of the whole run, by time spent planning and executing them, then what it did
    during each of this project's rounds (PG_ROUNDS)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, plans, round(total_plan_time::numeric, 1), round(total_exec_time::numeric, 1), "
            "round((shared_blks_hit + shared_blks_read)::numeric / greatest(calls, 1), 1), "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements "
            "ORDER BY total_exec_time + total_plan_time DESC LIMIT 25"
        ).fetchall()
    lines = ["| calls | plans | plan ms | exec ms | blocks per call | statement |", "|---|---|---|---|---|---|"]
    lines += [f"| {c} | {p} | {plan} | {run} | {blocks} | `{query}` |" for c, p, plan, run, blocks, query in rows]
    lines += ["", "By round (this project's rounds only):", ""]
    lines += [f"- round {n} {w}: {ops} ops/s, PostgreSQL {cpu} ms CPU per call; {t}" for n, w, ops, cpu, t in PG_ROUNDS]
    path.write_text("\n".join(lines) + "\n")
    say(f"PostgreSQL's statements written to {path}")


def _web_processes(command: list[str]) -> str:
    """How many processes the uvicorn command line starts: web_command gives `--workers` whenever more than
    uvicorn's default of one is asked for (WEB_CONCURRENCY included)."""
    return command[command.index("--workers") + 1] if "--workers" in command else "1"


def _start_profilers(stack: Stack, args: argparse.Namespace, logs: Path) -> list[subprocess.Popen]:
    """py-spy on the first worker and the web server's processes, for the whole measured run."""
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    pyspy = str(Path(PYTHON).parent / "py-spy")
    procs = []
    for name, proc in stack.procs:
        if name in ("worker0", "web"):
            procs.append(
                stack.spawn(
                    f"py-spy-{name}",
                    [pyspy, "record", "--pid", str(proc.pid), "--subprocesses", "--gil", "--format", "raw"]
                    + ["--rate", "200", "-o", str(out / f"{name}.txt"), "--nonblocking"],
                    log=logs / f"py-spy-{name}.log",
                )
            )
    time.sleep(1.0)
    return procs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
