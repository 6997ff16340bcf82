"""The framework is a distribution of its own, `django-virtual-objects`: the `objects` app with its migrations,
templates, static files and type marker, and nothing of this repository's project (config/, the shop, tests).
The wheel is built from a copy of the working tree with the setuptools of .venv: nothing is downloaded."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SKIP = (".venv", "var", ".git", "node_modules", "test-artifacts", "__pycache__", "*_cache", ".hypothesis", "build")


def build_wheel(dest: Path) -> Path:
    """`pip wheel . --no-deps --no-build-isolation` on a copy of the working tree (setuptools writes build/ and
    an egg-info folder next to the sources, which must not land in the checkout); returns the wheel's path."""
    src = dest / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    out = dest / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", out],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_is_named_and_versioned(wheel):
    assert wheel.name == "django_virtual_objects-0.2.0-py3-none-any.whl"


def test_wheel_holds_the_objects_app_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"objects", "django_virtual_objects-0.2.0.dist-info"}
    for foreign in ("config/", "shop/", "cart/", "wallet/", "tests/", "bench/", "scripts/", "templates/"):
        assert not any(name.startswith(foreign) for name in names), foreign
    assert "objects/__init__.py" in names
    assert "objects/py.typed" in names
    assert "objects/migrations/0001_initial.py" in names
    assert {f"objects/migrations/{p.name}" for p in (ROOT / "objects" / "migrations").glob("0*.py")} <= set(names)
    assert "objects/management/commands/__init__.py" in names
    assert "objects/templates/admin/objects/overview.html" in names
    assert "objects/templates/admin/objects/instance/change_form.html" in names
    assert "objects/static/objects/admin.css" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_wheel_declares_ranges_that_the_pinned_set_meets(wheel):
    """Runtime dependencies are ranges (a host resolves them with its own pins); requirements.txt, the pinned set
    this repository tests with, falls inside every one of them. PostgreSQL support is the `postgres` extra."""
    meta = zipfile.ZipFile(wheel).read("django_virtual_objects-0.2.0.dist-info/METADATA").decode()
    lines = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    requires = [Requirement(line.split(":", 1)[1].strip()) for line in lines]
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[3]
    core = [r for r in requires if r.marker is None]
    assert {r.name.lower() for r in core} >= {"django", "djangorestframework", "celery", "redis"}
    for req in core:
        assert req.specifier, f"{req} is not a range"
        assert not any(spec.operator == "==" for spec in req.specifier), f"{req} is pinned"
        assert req.specifier.contains(pins[req.name.lower()]), f"requirements.txt pins {req.name} outside {req}"
    postgres = [r for r in requires if r.marker is not None and r.marker.evaluate({"extra": "postgres"})]
    assert [r.name for r in postgres] == ["psycopg"]
    assert postgres[0].specifier.contains(metadata.version("psycopg"))
    assert {"binary", "pool"} <= postgres[0].extras  # the event loop's connections are a psycopg_pool pool
