"""The web tier's floor: CPU per request of gunicorn, and of gunicorn + Django + DRF, doing no work at all.

Runs the benchmark's gunicorn configuration (gthread, 2 workers x 16 threads, loopback) twice, with 4,000
requests at concurrency 32 from the benchmark's HTTP client each time, and prints the CPU milliseconds per
request of the gunicorn process tree (from /proc):

- `gunicorn + WSGI`: a WSGI function answering a constant (gunicorn's own share of any request);
- `gunicorn + Django + DRF`: `GET /ingress/restate/health`, this project's ingress view answering a constant
  through Django's handler, the ingress shortcut (objects/middleware.py) and DRF's `APIView` (no
  authentication, no database, no Redis): what every token call pays;
- `... whole middleware list`: the same with a session cookie, which takes every middleware and the URL
  resolver (a browser's call).

No database is touched (the settings' SQLite default is never opened). Usage: `python bench/floor.py
[--requests N]`; see docs/benchmarks.md for what the figures say about the comparison with Restate.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import aiohttp  # noqa: E402
from stack import PYTHON, Stack, free_port, say, wait_port  # noqa: E402

from bench.loadgen import _pool  # noqa: E402
from bench.run import cpu_seconds  # noqa: E402


def hello(environ, start_response):
    """The floor of gunicorn itself: a constant answer, nothing parsed."""
    body = b'{"status":"ok"}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def _hammer(url: str, requests: int, concurrency: int, cookies: dict | None = None) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    async with aiohttp.ClientSession(connector=connector, cookies=cookies) as session:

        async def one(_: int) -> None:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}")

        started = time.perf_counter()
        await _pool(requests, concurrency, math.inf, one)
        return time.perf_counter() - started


def measure(name: str, app: str, path: str, requests: int, concurrency: int, cookies: dict | None = None) -> dict:
    stack = Stack()
    try:
        port = free_port()
        proc = stack.spawn(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-k", "gthread", "-w", "2", "--threads", "16"]
            + ["--keep-alive", "30", "--log-level", "warning"],
            env={"DJANGO_SETTINGS_MODULE": "config.settings", "OBJECTS_BENCH": "1", "LOG_LEVEL": "WARNING"},
        )
        wait_port(port, what="gunicorn")
        url = f"http://127.0.0.1:{port}{path}"
        asyncio.run(_hammer(url, 200, concurrency, cookies))  # warm-up: imports, threads, connections
        before = cpu_seconds({"gunicorn": [proc.pid]})
        seconds = asyncio.run(_hammer(url, requests, concurrency, cookies))
        after = cpu_seconds({"gunicorn": [proc.pid]})
    finally:
        stack.stop()
    web = (after["gunicorn"] - before["gunicorn"]) * 1000 / requests
    client = (after["loadgen"] - before["loadgen"]) * 1000 / requests
    row = {"name": name, "requests": requests, "per_second": round(requests / seconds), "web_ms": round(web, 2)}
    row["client_ms"] = round(client, 2)
    say(f"{name}: {row['per_second']} requests/s, gunicorn CPU {row['web_ms']} ms per request")
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    rows = [
        measure("gunicorn + WSGI", "bench.floor:hello", "/", args.requests, args.concurrency),
        measure(
            "gunicorn + Django + DRF",
            "config.wsgi",
            "/ingress/restate/health",
            args.requests,
            args.concurrency,
        ),
        measure(
            "gunicorn + Django + DRF, whole middleware list",
            "config.wsgi",
            "/ingress/restate/health",
            args.requests,
            args.concurrency,
            cookies={"sessionid": "none"},
        ),
    ]
    print("\n| web tier, no work | requests/s | gunicorn CPU ms per request | client CPU ms per request |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['per_second']} | {row['web_ms']} | {row['client_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
