"""What the exercises' tests share (docs/exercises.md).

`make exercise N` runs exercise N's tests against your code, `exercises/NN_name/starter.py`; `make test` runs
every exercise's tests against its `solution.py` (EXERCISE_CODE=solution, tests/docs/test_exercises.py).
`call` runs a handler as `objects.call` does, except that the key's inbox is run here, in the test's process,
rather than by a Celery worker: exclusive handlers are still accepted as rows and run one at a time per key,
each in its own transaction, with the same validation, refusals and rollbacks.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CODE = os.environ.get("EXERCISE_CODE", "starter")


def load(test_file: str) -> ModuleType:
    """The code under test of the exercise whose test file this is: its starter.py, or its solution.py."""
    folder = Path(test_file).resolve().parent
    name = f"exercise_{folder.name}_{CODE}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder / f"{CODE}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def call(type_name: str, key: str, handler: str, arg: Any = None) -> Any:
    """Run a handler and return its output, or raise its TerminalError (a 400 for bad input, before anything
    is stored). Shared handlers run at once on the committed state; exclusive ones are accepted, then the
    key's inbox runs here."""
    from objects.testing import call_here

    return call_here(type_name, key, handler, arg)


@pytest.fixture(autouse=True)
def _committed_data(transactional_db: None) -> None:
    """Each test starts from an empty database, and its handlers' transactions really commit."""
