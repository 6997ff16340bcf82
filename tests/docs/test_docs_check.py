"""The docs as a reader meets them: every relative link and anchor in README.md and docs/ leads somewhere, no
user page in docs/ (outside docs/dev/) runs over 400 lines, and no code block in README.md or under docs/ is
left neither run nor marked why not.

Anchors follow GitHub's rule: a heading's text, lower-cased, with everything but letters, digits, spaces,
hyphens and underscores dropped and spaces made hyphens; a repeated heading gets `-1`, `-2`, ...
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.docs.samples import DOCS, FENCE, ROOT, blocks

PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
MAX_LINES = 400
LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def _prose(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered, with inline code spans blanked."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group("fence")
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip()[len(fence) :].strip():
                fence = None
            continue
        lines.append((number, re.sub(r"(`+)(?:(?!\1).)+?\1", lambda m: " " * len(m.group()), line)))
    return lines


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def _anchor_set(page: Path) -> set[str]:
    """Anchors of a page, from its headings read with their inline code (`ctx.run` is part of the anchor)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fence = None
    for line in page.read_text().splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group("fence")
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip()[len(fence) :].strip():
                fence = None
            continue
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for number, line in _prose(page.read_text()):
        for target in LINK.findall(line) + IMAGE.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            where = f"{page.relative_to(ROOT)}:{number}"
            destination = (page.parent / unquote(path)).resolve() if path else page
            if not destination.exists():
                broken.append(f"{where}: {target} (no such file)")
                continue
            if anchor and destination.suffix == ".md" and unquote(anchor) not in _anchor_set(destination):
                broken.append(f"{where}: {target} (no heading with that anchor in {destination.name})")
    return broken


def test_relative_links_and_anchors_lead_somewhere():
    broken = [entry for page in PAGES for entry in broken_links(page)]
    assert not broken, "Broken links (GitHub-style anchors):\n" + "\n".join(broken)


def test_user_pages_stay_short():
    long_pages = [
        f"{page.relative_to(ROOT)}: {lines} lines"
        for page in sorted(DOCS.rglob("*.md"))
        if "dev" not in page.relative_to(DOCS).parts[:-1] and (lines := len(page.read_text().splitlines())) > MAX_LINES
    ]
    assert not long_pages, f"Pages over {MAX_LINES} lines (split them, or move notes to docs/dev/):\n" + "\n".join(
        long_pages
    )


def test_no_code_block_in_readme_or_docs_is_left_unmarked():
    """docs/*.md is run by test_docs_samples.py; README.md and the folders under docs/ are not run, so each of
    their code blocks is data (```text, ```json, ...) or marked `norun: <reason>`."""
    pages = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if p.parent != DOCS)]
    unmarked = [
        f"{page.relative_to(ROOT)}:{block.line} (```{block.info})"
        for page in pages
        for block in blocks(page)
        if block.kind not in ("data", "norun")
    ]
    assert not unmarked, "Code blocks neither run nor marked `norun: <reason>`:\n" + "\n".join(unmarked)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Waiting: sleeps, awakeables and timers", "waiting-sleeps-awakeables-and-timers"),
        ("Calls, sends and `ctx.run`", "calls-sends-and-ctxrun"),
        ("A vanished host: timeouts and keepalives", "a-vanished-host-timeouts-and-keepalives"),
        ("1. Start the stack", "1-start-the-stack"),
        ("Ünïcødé keys [see](api.md)", "ünïcødé-keys-see"),
    ],
)
def test_anchors_are_githubs(heading, anchor):
    assert slug(heading) == anchor


def test_the_checks_catch_a_broken_link_a_missing_anchor_and_a_long_page(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n## Two words\n\n[ok](#two-words) [bad](#three) [gone](missing.md) [web](https://x.y)\n")
    monkeypatch.setattr("tests.docs.test_docs_check.ROOT", tmp_path)
    assert [entry.split(": ", 1)[1] for entry in broken_links(page)] == [
        "#three (no heading with that anchor in page.md)",
        "missing.md (no such file)",
    ]


def test_the_deployment_page_gives_the_commands_and_counts_make_run_starts():
    """docs/deployment.md's process table: the web command of scripts/stack.py (one per host, one process),
    one worker per host with objects.celery's default pool, one beat."""
    from stack import services

    from objects.celery import DEFAULT_CONCURRENCY

    commands = services("127.0.0.1", 8000, Path("schedule"))
    web = " ".join(["python", *commands["web"][1:]])
    page = (DOCS / "deployment.md").read_text().splitlines()
    rows = {line.split("|")[1].strip(): line for line in page if line.startswith("| ")}
    assert f"`{web}`" in rows["web"], f"the web command is now: {web}"
    assert "--workers" not in web, "the page says one process, uvicorn's default, unless WEB_CONCURRENCY is set"
    assert "of one process, as `make run` starts (`WEB_CONCURRENCY` raises it" in rows["web"]
    assert commands["worker"][1:3] == [str(ROOT / "manage.py"), "objects_worker"]
    assert "`python manage.py objects_worker`" in rows["worker"] and "one per host" in rows["worker"]
    assert f"threads pool of {DEFAULT_CONCURRENCY}" in rows["worker"]
    assert commands["sweeper"][2] == "objects_beat" and "`python manage.py objects_beat`" in rows["sweeper schedule"]


def test_the_readme_layout_names_every_module_of_objects():
    """README's layout section names each module and folder of objects/ (as a word: `state`, `api/`)."""
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout") :]
    layout = layout[: layout.index("\n## ")] if "\n## " in layout else layout
    package = ROOT / "objects"
    names = [p.stem for p in package.glob("*.py")]
    names += [f"{p.name}/" for p in package.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    missing = sorted(n for n in names if not re.search(rf"(?<![\w/]){re.escape(n)}(?![\w])", layout))
    assert not missing, f"README.md's layout does not name these parts of objects/: {missing}"


def test_no_page_cites_a_design_file_or_an_issue_number():
    """The docs say what is needed in their own words: no issue numbers, no design file outside the repository."""
    cited = [
        f"{page.relative_to(ROOT)}:{number}: {match.group()}"
        for page in PAGES
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for match in re.finditer(r"\bDESIGN\.md\b|\bissues? #?\d+\b", line, re.I)
    ]
    assert not cited, "Pages cite what is not in the repository:\n" + "\n".join(cited)
