"""requirements.txt alone installs everything the running system imports.

`make` installs requirements-dev.txt, whose test tools bring more distributions with them; a production
install (`pip install -r requirements.txt`) gets only the runtime list and what it pulls in. A distribution
that the web process or a worker imports but that only a test tool pulled in would work in every test and
fail in production (kombu's Redis transport imports `packaging`, which kombu declares only for its `redis`
extra). This test computes what the runtime requirements install (each one and what it requires, extras and
markers applied), hides every other installed distribution from a fresh interpreter, and starts the
processes' entry points there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# What gunicorn, the Celery worker and beat, and manage.py load (the bench app included: OBJECTS_BENCH=1)
ENTRY_POINTS = """
import django
django.setup()
import config.wsgi, config.asgi, config.celery, config.urls
import objects.tasks, objects.worker.sweeper, objects.api.ingress
import uvicorn.main, uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl, uvloop, httptools
import celery.bin.celery, celery.apps.worker, celery.apps.beat
from django.urls import get_resolver
get_resolver().url_patterns
print("started")
"""
HIDE = """
import sys
from importlib.abc import MetaPathFinder


class Hide(MetaPathFinder):
    hidden = frozenset({hidden!r})

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.hidden:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden: not installed by requirements.txt)")
        return None


sys.meta_path.insert(0, Hide())
"""


def runtime_requirements() -> list[Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def installed_by(requirements: list[Requirement]) -> set[str]:
    """The distributions `pip install` of `requirements` installs: each one and, recursively, what it
    requires for the extras asked of it, on this platform."""
    found: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(req, frozenset(req.extras)) for req in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found.add(name)
        for text in metadata.distribution(req.name).requires or []:
            dependency = Requirement(text)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((dependency, frozenset(dependency.extras)))
    return found


def test_the_processes_start_with_only_what_the_runtime_requirements_install():
    """The entry points import in an interpreter where every distribution outside the runtime requirements'
    closure is hidden (as in a production install); a module tried only if present (`try: import ...`) is
    fine to hide, one imported for good is not."""
    runtime = installed_by(runtime_requirements())
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if module not in sys.stdlib_module_names and not any(canonicalize_name(d) in runtime for d in dists)
    )
    assert "pytest" in hidden and "django" not in hidden, "the closure is not what the requirements install"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "OBJECTS_BENCH": "1"}
    env.setdefault("DATABASE_URL", "sqlite:///" + str(ROOT / "var" / "requirements-check.sqlite3"))
    script = HIDE.format(hidden=hidden) + ENTRY_POINTS
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, (
        "With only what requirements.txt installs, the processes do not start: add the distribution named "
        "below to requirements.txt (or the extra of the requirement that needs it).\n" + out.stderr[-3000:]
    )
    assert out.stdout.strip().endswith("started"), out.stdout[-500:]


def test_the_closure_follows_extras():
    """The closure includes what an extra asks for only when the extra is asked for."""
    plain = installed_by([Requirement("kombu")])
    with_redis = installed_by([Requirement("kombu[redis]")])
    assert "packaging" not in plain
    assert {"packaging", "redis"} <= with_redis
