"""CPU per request of the web application, and per invocation of the worker's pass, in one process.

Starts a throwaway PostgreSQL and Redis (scripts/stack.py), migrates, makes a token, and calls the WSGI
application directly, one request after another, for token sends of `BenchCart.add_item` (the ingress's
whole hot path: authentication, validation, the INSERT, the ring) and for the ingress's health path. No worker
runs: the sends stay pending. Then the worker's side (`--passes`): sends to `--keys-per-pass` keys, then one
group pass (`objects.worker.partition.drain_pass`, as a Celery worker's drain runs it: claim, inboxes, handlers,
finishing statements, commit, done signals), timed alone. Prints the process's CPU microseconds per request
and per invocation (time.process_time), round by round, so a change on the hot path can be measured without
the noise of a full benchmark run (the machine's steal time moves full runs by more than most single
changes). Compare two versions by running this in each, alternating.

Usage: python bench/inprocess.py [--requests N] [--passes N] [--keys-per-pass N] [--rounds N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per kind and round (default 2000)")
    p.add_argument("--passes", type=int, default=250, help="worker passes per round (default 250; 0: none)")
    p.add_argument("--keys-per-pass", type=int, default=4, help="keys with one invocation each per pass")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--profile", metavar="FILE", help="also write cProfiles (CPU time) of sends to FILE and of passes to FILE.pass"
    )
    args = p.parse_args(argv)
    from stack import Stack, say

    stack = Stack()
    try:
        say("starting PostgreSQL and Redis (loopback)")
        env = {"DATABASE_URL": stack.start_postgres(), "REDIS_URL": stack.start_redis(), "OBJECTS_BENCH": "1"}
        os.environ.update(env, DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING")
        say("migrating the database")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from config.wsgi import application

        token = Token.objects.create(user=get_user_model().objects.create_user("inprocess")).key
        body = json.dumps({"product_id": "p1", "quantity": 1, "price_cents": 199, "seq": 1}).encode()
        statuses: list[str] = []

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            statuses.append(status)

        def run(kind: str, n: int, keys: int = 200, first: int = 0) -> None:
            for i in range(first, first + n):
                send = kind == "send"
                path = f"/ingress/BenchCart/inproc-{i % keys}/add_item/send" if send else "/ingress/restate/health"
                environ = {
                    "REQUEST_METHOD": "POST" if send else "GET",
                    "PATH_INFO": path,
                    "RAW_URI": path,
                    "SCRIPT_NAME": "",
                    "QUERY_STRING": "",
                    "SERVER_NAME": "127.0.0.1",
                    "SERVER_PORT": "8000",
                    "SERVER_PROTOCOL": "HTTP/1.1",
                    "CONTENT_TYPE": "application/json",
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_HOST": "127.0.0.1:8000",
                    "HTTP_AUTHORIZATION": f"Token {token}",
                    "HTTP_ACCEPT": "*/*",
                    "wsgi.input": io.BytesIO(body),
                    "wsgi.url_scheme": "http",
                    "wsgi.errors": sys.stderr,
                    "wsgi.multithread": True,
                    "wsgi.multiprocess": True,
                    "wsgi.run_once": False,
                    "wsgi.version": (1, 0),
                }
                response = application(environ, start_response)
                b"".join(response)
                response.close()

        from objects import conf
        from objects.registry import all_objects
        from objects.worker import slowkeys
        from objects.worker.partition import drain_pass

        partitions = list(range(conf.get("OBJECTS_PARTITIONS")))
        for obj in all_objects():  # as in a worker that has run each handler once: its passes run them all
            slowkeys.note_quick(obj.name, list(obj.handlers))
        sent = 0

        def drain_all() -> None:
            """Run passes until one finds nothing: what earlier sends left pending is out of the way."""
            while drain_pass(partitions).ran:
                pass

        def passes(n: int) -> tuple[float, int]:
            """`n` times: a send to each of `--keys-per-pass` keys (not timed), then one timed pass."""
            nonlocal sent
            spent, ran = 0.0, 0
            for _ in range(n):
                run("send", args.keys_per_pass, keys=1000, first=sent)
                sent += args.keys_per_pass
                started = time.process_time()
                ran += drain_pass(partitions).ran
                spent += time.process_time() - started
            return spent, ran

        run("send", 300)  # connections, prepared statements, caches
        if not statuses[-1].startswith("202"):
            say(f"a send answered {statuses[-1]}, not 202: check the bench app (OBJECTS_BENCH=1)")
            return 1
        drain_all()  # the warm-up's sends, and the worker side's caches
        for number in range(1, args.rounds + 1):
            figures = []
            for kind in ("send", "health"):
                started = time.process_time()
                run(kind, args.requests)
                figures.append(f"{kind} {(time.process_time() - started) / args.requests * 1e6:.0f}")
            drain_all()  # the round's sends, so that each pass below finds its own
            if args.passes:
                spent, ran = passes(args.passes)
                if ran != args.passes * args.keys_per_pass:
                    say(f"the passes ran {ran} invocations, not {args.passes * args.keys_per_pass}: check the worker")
                    return 1
                figures.append(f"pass {spent / ran * 1e6:.0f} per invocation")
            say(f"round {number}: CPU us per request: {', '.join(figures)}")
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(run, "send", args.requests)
            profiler.dump_stats(args.profile)
            say(f"profile of {args.requests} sends written to {args.profile} (python -m pstats {args.profile})")
            drain_all()
            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(passes, args.passes or 250)
            profiler.dump_stats(args.profile + ".pass")
            say(f"profile of the passes written to {args.profile}.pass")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
