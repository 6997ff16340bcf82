"""The web tier's floor: CPU per request of the web server, and of the server + Django, doing no work at all.

Runs each server as the benchmark runs it (loopback), 4,000 requests at concurrency 32 from the benchmark's
HTTP client each time, and prints the CPU milliseconds per request of the server's process tree (from /proc):

- `uvicorn + ASGI`: an ASGI function answering a constant (uvicorn's own share of any request);
- `uvicorn + config.asgi, threads`: `GET /ingress/restate/health` through the production application
  (objects/asgi.py), which gives it to Django's WSGI handler on its threads (a2wsgi): what every request the
  event loop does not answer pays;
- `gunicorn + WSGI` and `gunicorn + Django + DRF` (gthread, 2 workers x 16 threads): the same through the
  server before session 9 (`config.wsgi`), with and without a session cookie (which takes every middleware
  and the URL resolver).

No database is touched (the settings' SQLite default is never opened). Usage: `python bench/floor.py
[--requests N]`; see docs/dev/benchmark-history.md for what the figures say about the comparison with Restate.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import aiohttp  # noqa: E402
from stack import PYTHON, Stack, free_port, say, wait_port, web_command  # noqa: E402

from bench.loadgen import _pool  # noqa: E402
from bench.run import cpu_seconds  # noqa: E402

BODY = b'{"status":"ok"}'


def hello(environ, start_response):
    """The floor of gunicorn itself: a constant answer, nothing parsed."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


async def hello_asgi(scope, receive, send):
    """The floor of uvicorn itself: a constant answer."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def gunicorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: (
        [PYTHON, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-k", "gthread"]
        + [
            "-w",
            "2",
            "--threads",
            "16",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ]
    )


def uvicorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: [*web_command("127.0.0.1", port)[:3], app, *web_command("127.0.0.1", port)[4:]]


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


def measure(
    name: str,
    command: Callable[[int], list[str]],
    path: str,
    requests: int,
    concurrency: int,
    cookies: dict | None = None,
) -> dict:
    stack = Stack()
    try:
        port = free_port()
        proc = stack.spawn(
            "web",
            command(port),
            env={
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "OBJECTS_BENCH": "1",
                "LOG_LEVEL": "WARNING",
                "SECRET_KEY": os.environ.get("SECRET_KEY") or os.urandom(32).hex(),  # DEBUG is off
            },
        )
        wait_port(port, what="the web server")
        url = f"http://127.0.0.1:{port}{path}"
        asyncio.run(_hammer(url, 200, concurrency, cookies))  # warm-up: imports, threads, connections
        before = cpu_seconds({"web": [proc.pid]})
        seconds = asyncio.run(_hammer(url, requests, concurrency, cookies))
        after = cpu_seconds({"web": [proc.pid]})
    finally:
        stack.stop()
    web = (after["web"] - before["web"]) * 1000 / requests
    client = (after["loadgen"] - before["loadgen"]) * 1000 / requests
    row = {"name": name, "requests": requests, "per_second": round(requests / seconds), "web_ms": round(web, 2)}
    row["client_ms"] = round(client, 2)
    say(f"{name}: {row['per_second']} requests/s, server CPU {row['web_ms']} ms per request")
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    health = "/ingress/restate/health"
    n, c = args.requests, args.concurrency
    rows = [
        measure("uvicorn + ASGI", uvicorn("bench.floor:hello_asgi"), "/", n, c),
        measure("uvicorn + config.asgi, threads (Django, DRF)", uvicorn("config.asgi:application"), health, n, c),
        measure("gunicorn + WSGI", gunicorn("bench.floor:hello"), "/", n, c),
        measure("gunicorn + Django + DRF", gunicorn("config.wsgi"), health, n, c),
        measure(
            "gunicorn + Django + DRF, whole middleware list",
            gunicorn("config.wsgi"),
            health,
            n,
            c,
            cookies={"sessionid": "none"},
        ),
    ]
    print("\n| web tier, no work | requests/s | server CPU ms per request | client CPU ms per request |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['per_second']} | {row['web_ms']} | {row['client_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
