"""Demonstrate exclusive execution: concurrent calls at one key, then at many keys, and what happened.

Against a running stack over HTTP (`make run`; the token must be a staff user's, to read the invocations):

    python scripts/demo_exclusive.py --url http://127.0.0.1:8000 --token <staff token>

or in-process with objects.call against the configured database (workers must be running):

    python scripts/demo_exclusive.py --in-process

It uses the `Counter` object (counters/virtual_objects.py): `increment` reads the value, adds one and writes
it back, the textbook lost-update race. Each run uses fresh keys (`demo/<run>-...`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path


class Http:
    """Calls through the ingress; reads invocation timings from the management API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def _get(self, path: str) -> object:
        request = urllib.request.Request(self.url + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def increment(self, key: str) -> int:
        path = f"/ingress/Counter/{urllib.parse.quote(key, safe='')}/increment"
        request = urllib.request.Request(self.url + path, data=b"{}", headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(json.loads(response.read()))

    def value(self, key: str) -> int:
        path = f"/ingress/Counter/{urllib.parse.quote(key, safe='')}/get"
        request = urllib.request.Request(self.url + path, data=b"", headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(json.loads(response.read()))

    def intervals(self, keys: list[str]) -> list[tuple[str, int, datetime, datetime]]:
        rows = []
        for key in keys:
            query = urllib.parse.urlencode({"type": "Counter", "key": key, "handler": "increment", "limit": 1000})
            page = self._get(f"/api/invocations/?{query}")
            for row in page["results"]:  # type: ignore[index]
                rows.append((key, 0, _time(row["started_at"]), _time(row["finished_at"])))
        return rows


class InProcess:
    """objects.call in this process; invocation timings from the database."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        import objects

        self.objects = objects

    def increment(self, key: str) -> int:
        from django.db import connections

        try:
            return int(self.objects.call("Counter", key, "increment"))
        finally:
            connections.close_all()

    def value(self, key: str) -> int:
        return int(self.objects.call("Counter", key, "get"))

    def intervals(self, keys: list[str]) -> list[tuple[str, int, datetime, datetime]]:
        from objects.models import Invocation

        rows = Invocation.objects.filter(type_name="Counter", key__in=keys, handler="increment").order_by("id")
        return [(r.key, r.pk, r.started_at, r.finished_at) for r in rows]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def max_at_once(intervals: list[tuple[str, int, datetime, datetime]]) -> int:
    """The largest number of executions in progress at the same moment (touching ends do not overlap)."""
    events = sorted([(start, 1) for _, _, start, _ in intervals] + [(end, -1) for _, _, _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def fire(client: InProcess | Http, keys: list[str], threads: int) -> tuple[list[tuple[str, int]], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda key: (key, client.increment(key)), keys))
    return results, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of a running stack, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("TOKEN"), help="a staff user's API token (or $TOKEN)")
    parser.add_argument("--in-process", action="store_true", help="use objects.call against the configured DB")
    parser.add_argument("--calls", type=int, default=40, help="concurrent increments at the one key (40)")
    parser.add_argument("--keys", type=int, default=8, help="keys in the many-keys round (8)")
    parser.add_argument("--per-key", type=int, default=5, help="increments per key in that round (5)")
    parser.add_argument("--threads", type=int, default=16, help="concurrent callers (16)")
    args = parser.parse_args(argv)
    if args.in_process:
        client: InProcess | Http = InProcess()
    elif args.url and args.token:
        client = Http(args.url, args.token)
    else:
        parser.error("give --url and --token (a staff user's), or --in-process")
    run = uuid.uuid4().hex[:6]

    one = f"demo/{run}-one"
    print(f"1. {args.calls} concurrent increments of Counter/{one} ({args.threads} callers at a time)")
    results, took = fire(client, [one] * args.calls, args.threads)
    returned = sorted(value for _, value in results)
    print(f"   answers: each of 1..{args.calls} exactly once: {returned == list(range(1, args.calls + 1))}")
    print(f"   final value: {client.value(one)} (expected {args.calls}; a lost update would leave less)")
    timings = client.intervals([one])
    print(f"   executions in progress at the same moment, at most: {max_at_once(timings)}")
    print(f"   took {took:.2f} s")

    many = [f"demo/{run}-k{i}" for i in range(args.keys)]
    print(f"2. {args.keys} keys x {args.per_key} concurrent increments each, interleaved")
    results, took = fire(client, many * args.per_key, args.threads)
    finals = {key: client.value(key) for key in many}
    print(f"   final values: {sorted(set(finals.values()))} (expected [{args.per_key}] for every key)")
    timings = client.intervals(many)
    per_key = max(max_at_once([t for t in timings if t[0] == key]) for key in many)
    print(f"   at most {per_key} execution at a time on any one key")
    print(f"   at most {max_at_once(timings)} executions at the same moment across the keys")
    print(f"   took {took:.2f} s")
    ok = returned == list(range(1, args.calls + 1)) and per_key == 1 and set(finals.values()) == {args.per_key}
    print("exclusive per key: " + ("held" if ok else "VIOLATED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
