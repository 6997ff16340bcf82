"""docs/exercises.md: every exercise's checks pass against its solution, fail against its untouched starter
(so the checks check something), and the page names each exercise's folder, `make exercise N` and the solution.

Each run is scripts/exercise.py, what `make exercise N` runs: the exercise's tests in a pytest of their own, on
SQLite and a Redis of their own (the exercises' types are not the test suite's).
"""

from __future__ import annotations

import subprocess

from stack import PYTHON, ROOT

EXERCISES = sorted(p for p in (ROOT / "exercises").iterdir() if p.is_dir() and p.name[:2].isdigit())
PAGE = ROOT / "docs" / "exercises.md"


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "scripts/exercise.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_solution_passes_its_checks():
    done = _check("all", "--solution")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_every_untouched_starter_fails_its_checks():
    done = _check("all")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    for folder in EXERCISES:
        assert f"{folder.name}/" in done.stdout, f"{folder.name}: no check failed against the starter"
    assert " passed" not in done.stdout, "a check passes against a starter: it checks nothing"


def test_the_page_names_each_exercise_its_check_and_its_solution():
    page = PAGE.read_text()
    for folder in EXERCISES:
        number = int(folder.name[:2])
        for text in (f"exercises/{folder.name}/starter.py", f"make exercise {number}", f"{folder.name}/solution.py"):
            assert text in page, f"docs/exercises.md does not name {text}"
    assert page.count("<details>") >= len(EXERCISES)


def test_an_unknown_exercise_is_named_with_the_list():
    done = _check("99")
    assert done.returncode != 0 and "No exercise '99'" in done.stderr and "1 (tally)" in done.stderr
