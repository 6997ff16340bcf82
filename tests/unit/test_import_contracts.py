"""The import contracts of pyproject.toml ([tool.importlinter]) hold: the demo apps use the framework through the
names `objects/__init__.py` exports, config/ adds only the host's documented integration points, the framework
imports nothing of this repository's project. `make check` runs the same `lint-imports`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
DEMO_APPS = ("cart", "wallet", "inventory", "orders", "counters", "catalog", "shop")
# the imports config/ is allowed: each ignored import of the host-integration contract
HOST_IMPORTS = {
    "config/celery.py": "import objects.celery\n",
    "config/asgi.py": "from objects.asgi import wrap\n",
    "config/settings.py": "from objects.timeouts import postgres_options\n",
    "config/urls.py": "from objects.ratelimit import login_limited\n",
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_repository_keeps_its_import_contracts():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _layered_modules() -> set[str]:
    """The modules of objects/ that the layers contracts name, each inside its contract's containers (each must
    exist for lint-imports to run), as paths below objects/ without their suffix."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    found = set()
    for contract in config["contracts"]:
        if contract["type"] != "layers":
            continue
        for layer in contract["layers"]:
            for name in re.split(r"[|:]", layer):
                for container in contract.get("containers", [""]):
                    dotted = f"{container}.{name.strip()}" if container else name.strip()
                    if "." in dotted:
                        found.add(dotted.split(".", 1)[1].replace(".", "/"))
    return found


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project laid out like this one (the repository's pyproject.toml, one module per package and each module
    the layers name) plus `files`."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("objects", "config", *DEMO_APPS):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    names = {"models", "celery", "asgi", "timeouts", "ratelimit", "errors"} | _layered_modules()
    for name in names:
        if any(other.startswith(name + "/") for other in names):  # a package the layers name modules of
            (tmp_path / "objects" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "objects" / name / "__init__.py").write_text("")
        else:
            (tmp_path / "objects" / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "objects" / f"{name}.py").write_text("")
    (tmp_path / "objects" / "__init__.py").write_text("from .errors import *\n")
    for path, text in {**HOST_IMPORTS, **files}.items():
        (tmp_path / path).write_text(text)
    return tmp_path


def test_a_demo_app_reaching_into_the_framework_breaks_the_contract(tmp_path):
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    kept = lint_imports(_tree(tmp_path / "ok", {"shop/selectors.py": "import objects\nfrom objects import call\n"}))
    assert kept.returncode == 0, kept.stdout[-4000:] + kept.stderr[-2000:]
    done = lint_imports(_tree(tmp_path / "bad", {"shop/selectors.py": "from objects.models import StateEntry\n"}))
    assert done.returncode == 1
    assert "shop.selectors -> objects.models" in done.stdout


def test_config_may_not_reach_past_its_integration_points(tmp_path):
    done = lint_imports(_tree(tmp_path, {"config/views.py": "from objects.models import Instance\n"}))
    assert done.returncode == 1
    assert "config.views -> objects.models" in done.stdout


def test_the_framework_may_not_import_a_demo_app(tmp_path):
    done = lint_imports(_tree(tmp_path, {"objects/models.py": "from cart import services\n"}))
    assert done.returncode == 1
    assert "objects.models -> cart" in done.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tmp_path):
    """The engine's layers (docs/architecture.md): the store may not import the services."""
    done = lint_imports(_tree(tmp_path, {"objects/models.py": "from objects import services\n"}))
    assert done.returncode == 1
    assert "objects.models -> objects.services" in done.stdout
