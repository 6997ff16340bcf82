"""`make test`: start a throwaway PostgreSQL and Redis, run the whole pytest suite against them, stop both.

Celery workers are started by the test fixtures (they need the test database's name). The exit status
is pytest's; everything started here is stopped on success, failure or Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

from stack import PYTHON, ROOT, Stack, say


def main(argv: list[str]) -> int:
    stack = Stack()
    try:
        say("starting PostgreSQL (throwaway, loopback)")
        database_url = stack.start_postgres()
        say("starting Redis")
        redis_url = stack.start_redis()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DVO_TEST_TMP": str(stack.tmp),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),  # DEBUG is off in the tests
            "PYTHONUNBUFFERED": "1",
            "OBJECTS_TEST_OBJECTS": "1",
            "DVO_PG_BINDIR": str(stack.pg["bindir"]),
            "DVO_PG_DATA": str(stack.pg["data"]),
            "DVO_PG_AS": " ".join(stack.pg["as"]),
        }
        say(f"running pytest {' '.join(argv)}")
        return subprocess.call([PYTHON, "-m", "pytest", *argv], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        say("stopping PostgreSQL and Redis")
        stack.stop()


def _terminate(*_: object) -> None:
    raise KeyboardInterrupt  # so that `finally` stops PostgreSQL and Redis on SIGTERM too


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main(sys.argv[1:]))
