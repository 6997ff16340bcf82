"""Code blocks of docs/*.md: found, classified by their info string, and how each kind is run.

Conventions (docs/index.md explains them to writers):
- ```pycon          a Python session, run with doctest against live workers; outputs are checked
                    (ELLIPSIS, NORMALIZE_WHITESPACE: long outputs may wrap at spaces, `...` matches anything).
- ```python         plain Python, exec'd against live workers (types it declares are unregistered after).
- ```python register  declares object types: loaded with the test types (tests/testobjects/docs_examples.py)
                    so that test workers run them too; the block's names are visible to later blocks.
- ```python file=P  a verbatim excerpt of file P (checked line by line); P itself runs in the test suite.
- ```console        shell commands after `$ `, run with bash against a live web server; the lines after a
                    command are its expected output (checked like pycon).
- ```python project=P [append] [variant=V]   a file of a new project (docs/install.md), written whole or
                    appended to, and ```console project [background]: commands run in that project; both run by
                    tests/integration/test_install.py in a fresh virtualenv, in page order (a variant's blocks
                    only in that variant's run).
- any of these with `norun: <reason>` in the info string is not run; the reason is required.
Blocks in other languages (text, json, ini, ...) are output or data and are not run.
"""

from __future__ import annotations

import dataclasses
import doctest
import re
import subprocess
import textwrap
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROOT = DOCS.parent
# pages run whole, in page order on one stack (SQLite as `make run` serves it, then PostgreSQL), by
# tests/docs/test_build_your_own.py; the per-kind tests of test_docs_samples.py leave them out
ORDERED = {"build-your-own.md"}
CODE_LANGS = {"python", "py", "pycon", "console", "bash", "sh", "shell", "zsh"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclasses.dataclass
class Block:
    doc: str
    line: int
    lang: str
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"docs/{self.doc}:{self.line}"

    @property
    def norun_reason(self) -> str | None:
        match = re.search(r"norun:\s*(.*)$", self.info)
        return match.group(1).strip() if match else None

    @property
    def file(self) -> str | None:
        match = re.search(r"\bfile=(\S+)", self.info)
        return match.group(1) if match else None

    @property
    def project_file(self) -> str | None:
        match = re.search(r"\bproject=(\S+)", self.info)
        return match.group(1) if match else None

    @property
    def flags(self) -> list[str]:
        return self.info.split()[1:]

    @property
    def kind(self) -> str:
        """pycon | python | register | excerpt | console | project | norun | data | unrunnable."""
        if self.lang not in CODE_LANGS:
            return "data"
        if self.norun_reason is not None:
            return "norun" if self.norun_reason else "unrunnable"
        if (self.lang == "python" and self.project_file) or (self.lang == "console" and "project" in self.flags):
            return "project"
        if self.lang in ("python", "py"):
            if self.file:
                return "excerpt"
            return "register" if "register" in self.info.split()[1:] else "python"
        if self.lang == "pycon":
            return "pycon"
        if self.lang == "console" and self.text.lstrip().startswith("$ "):
            return "console"
        return "unrunnable"


def blocks(doc: Path) -> list[Block]:
    found: list[Block] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        lang = info.split()[0].lower() if info else ""
        found.append(Block(doc.name, start + 1, lang, info, textwrap.dedent("\n".join(body)) + "\n"))
    return found


def all_blocks() -> list[Block]:
    return [block for doc in sorted(DOCS.glob("*.md")) for block in blocks(doc)]


def console_commands(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs; a command line ending in a backslash continues on the next line."""
    pairs: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        command = [lines[i][2:]]
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        i += 1
        want: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            want.append(lines[i])
            i += 1
        pairs.append(("\n".join(command), "\n".join(want).strip()))
    return pairs


def excerpt_found(excerpt: str, source: str) -> bool:
    """Whether the excerpt's lines appear contiguously in the source (trailing spaces and a common indent ignored)."""
    want = textwrap.dedent(excerpt.strip("\n")).splitlines()
    want = [line.rstrip() for line in want]
    have = [line.rstrip() for line in source.splitlines()]
    return any(
        [line.rstrip() for line in textwrap.dedent("\n".join(have[i : i + len(want)])).splitlines()] == want
        for i in range(len(have) - len(want) + 1)
    )


CONSOLE_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
DOCS_URL = "http://127.0.0.1:8000"  # the address the pages show; the tests' server answers instead


def run_console(command: str, want: str, *, where: str, state: Path, env: dict, base_url: str) -> str | None:
    """One `$ command` of a console block, in bash, with the variables earlier commands exported (kept in the
    file `state`); None when it succeeded and printed `want` (doctest's ELLIPSIS and whitespace rules), else
    what to report."""
    script = f"source {state}\nset -a\n{command.replace(DOCS_URL, base_url)}\nrc=$?\nexport -p > {state}\nexit $rc\n"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    got = done.stdout + done.stderr
    if done.returncode != 0 or (want and not doctest.OutputChecker().check_output(want + "\n", got, CONSOLE_FLAGS)):
        return f"{where}: $ {command}\n  exit {done.returncode}\n  expected:\n{want}\n  got:\n{got}"
    return None
