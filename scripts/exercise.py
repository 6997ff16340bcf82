"""`make exercise N`: run exercise N's tests (exercises/NN_name/test_*.py) against your code in its starter.py.

Like `make run`, it needs only Python: the tests run on an in-memory SQLite database and a Redis started here
(stopped at the end). `--solution` runs them against the solutions instead (`make test` does, for every
exercise: tests/docs/test_exercises.py); `all` runs every exercise.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

from stack import PYTHON, ROOT, Stack, say

EXERCISES = ROOT / "exercises"


def folders(which: str) -> list[str]:
    found = sorted(p for p in EXERCISES.iterdir() if p.is_dir() and p.name[:2].isdigit())
    if which == "all":
        return [str(p) for p in found]
    chosen = [p for p in found if which.isdigit() and int(p.name[:2]) == int(which)]
    if not chosen:
        names = ", ".join(f"{int(p.name[:2])} ({p.name[3:]})" for p in found)
        raise SystemExit(f"No exercise {which!r}: say which, e.g. `make exercise 1`. The exercises: {names}.")
    return [str(chosen[0])]


def main(argv: list[str]) -> int:
    solution = "--solution" in argv
    args = [a for a in argv if a != "--solution"]
    if not args:
        raise SystemExit("Say which exercise: `make exercise 1` (docs/exercises.md lists them).")
    paths = folders(args[0])
    stack = Stack()
    try:
        redis_url = stack.start_redis()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{stack.tmp / 'exercises.sqlite3'}",
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "EXERCISE_CODE": "solution" if solution else "starter",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        code = "the solutions" if solution else "your code (starter.py)"
        say(f"checking {code}: {', '.join(os.path.basename(p) for p in paths)}")
        return subprocess.call(
            [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), *paths, *args[1:]],
            cwd=ROOT,
            env=env,
        )
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def _terminate(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main(sys.argv[1:]))
