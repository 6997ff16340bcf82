"""Object types declared in docs/*.md (```python register blocks), loaded with the test types so that the
test workers can run their exclusive handlers. The blocks of one page run in page order in one module, so a
later block adds handlers to an object an earlier one declared. Load errors are kept for tests/docs to report."""

from __future__ import annotations

import sys
import types

from tests.docs.samples import all_blocks

ERRORS: list[str] = []
MODULES: dict[str, types.ModuleType] = {}

for _block in all_blocks():
    if _block.kind != "register":
        continue
    _name = f"{__name__}.{_block.doc[:-3].replace('-', '_')}"
    _module = sys.modules.get(_name) or types.ModuleType(_name)  # dataclasses look their module up there
    sys.modules[_name] = _module
    try:
        exec(compile(_block.text, _block.where, "exec"), _module.__dict__)  # noqa: S102 - the docs' own sample
    except Exception as exc:  # noqa: BLE001 - a broken doc sample must not stop the test suite from starting
        ERRORS.append(f"{_block.where}: {type(exc).__name__}: {exc}")
    MODULES[_block.where] = _module
