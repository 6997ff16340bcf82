"""Every code sample in docs/*.md runs: sessions and scripts against live workers, curl against a live server.

A python/console/shell block that is neither run nor marked `norun: <reason>` fails the first test, so a
new sample cannot slip in unchecked. The conventions are in tests/docs/samples.py and docs/index.md.
"""

from __future__ import annotations

import doctest
import io
import os
import sys
import tempfile
import types
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from objects import registry
from tests.docs.samples import ORDERED, ROOT, all_blocks, console_commands, excerpt_found, run_console
from tests.testobjects import docs_examples

BLOCKS = all_blocks()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
LIVE_DOCS = sorted({b.doc for b in BLOCKS if b.kind in ("pycon", "register")} - ORDERED)
PLAIN_DOCS = sorted({b.doc for b in BLOCKS if b.kind == "python"} - set(LIVE_DOCS) - ORDERED)
CONSOLE_DOCS = sorted({b.doc for b in BLOCKS if b.kind == "console"} - ORDERED)


def test_every_code_block_is_run_or_marked_with_a_reason():
    unrunnable = [f"{b.where} (```{b.info})" for b in BLOCKS if b.kind == "unrunnable"]
    assert not unrunnable, (
        "These blocks are neither run nor marked: use ```pycon, ```python, ```python file=PATH, ```console with "
        "`$ ` prompts, or add `norun: <reason>` to the info string:\n" + "\n".join(unrunnable)
    )
    assert any(b.kind in ("pycon", "console") for b in BLOCKS), "the harness found no runnable sample at all"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "excerpt"], ids=lambda b: b.where)
def test_excerpt_is_verbatim_from_its_file(block):
    source = ROOT / block.file
    assert source.is_file(), f"{block.where}: {block.file} does not exist"
    assert excerpt_found(block.text, source.read_text()), f"{block.where}: the excerpt is not in {block.file} any more"


def test_types_declared_in_the_docs_load_in_the_test_types():
    assert not docs_examples.ERRORS, "\n".join(docs_examples.ERRORS)
    declared = [b.where for b in BLOCKS if b.kind == "register"]
    assert sorted(docs_examples.MODULES) == sorted(declared)


def _load_demo() -> None:
    call_command("load_demo", stdout=io.StringIO())


@pytest.mark.parametrize("doc", PLAIN_DOCS)
def test_python_blocks_of_pages_without_sessions_run(doc):
    """Pages whose only samples are plain Python (settings, access rules): run them, no workers needed."""
    namespace: dict = {"__name__": f"docs_sample_{doc[:-3]}"}
    for block in [b for b in BLOCKS if b.doc == doc and b.kind == "python"]:
        exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102 - the doc's own sample


@pytest.mark.parametrize("doc", LIVE_DOCS)
def test_python_samples_run_and_print_what_the_doc_shows(doc, live):
    _load_demo()
    before = {o.name for o in registry.all_objects()}
    module = types.ModuleType(f"docs_sample_{doc[:-3]}")  # dataclasses look their module up in sys.modules
    sys.modules[module.__name__] = module
    globs = module.__dict__
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    parser = doctest.DocTestParser()
    failures = []
    try:
        for block in [b for b in BLOCKS if b.doc == doc and b.kind in ("pycon", "python", "register")]:
            if block.kind == "register":  # loaded at start-up with the test types, here and in the workers
                globs.update({k: v for k, v in docs_examples.MODULES[block.where].__dict__.items() if k[:2] != "__"})
                continue
            if block.kind == "python":
                try:
                    exec(compile(block.text, block.where, "exec"), globs)  # noqa: S102 - the doc's own sample
                except Exception as exc:  # noqa: BLE001 - report which block failed
                    failures.append(f"{block.where}: {type(exc).__name__}: {exc}")
                continue
            test = parser.get_doctest(block.text, globs, block.where, str(ROOT / "docs" / doc), block.line)
            out = io.StringIO()
            result = runner.run(test, out=out.write, clear_globs=False)
            globs.update(test.globs)  # DocTest copies its globals: carry them to the next block
            if result.failed:
                failures.append(out.getvalue())
    finally:
        for name in {o.name for o in registry.all_objects()} - before:
            registry.unregister(name)
        sys.modules.pop(module.__name__, None)
        connections.close_all()
    assert not failures, "\n".join(failures)


def _run_console(doc: str, base_url: str) -> list[str]:
    failures = []
    database = connections["default"].settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "env.sh"
        state.write_text("")
        for block in [b for b in BLOCKS if b.doc == doc and b.kind == "console"]:
            for command, want in console_commands(block.text):
                failed = run_console(command, want, where=block.where, state=state, env=env, base_url=base_url)
                if failed:
                    failures.append(failed)
    return failures


@pytest.mark.parametrize("doc", CONSOLE_DOCS)
def test_console_samples_run_against_a_live_server(doc, live_web):
    _load_demo()
    failures = _run_console(doc, live_web.url)
    assert not failures, "\n\n".join(failures)


def test_the_classifier_flags_an_unmarked_shell_block_and_accepts_a_reasoned_norun(tmp_path):
    from tests.docs.samples import blocks

    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nrm -rf /\n```\n```bash norun: explains a command\nmake run\n```\n"
        "```python norun:\nx = 1\n```\n```console\n$ echo hi\nhi\n```\n```text\nout\n```\n"
    )
    assert [b.kind for b in blocks(page)] == ["unrunnable", "norun", "unrunnable", "console", "data"]
