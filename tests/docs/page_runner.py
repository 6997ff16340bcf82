"""Run one docs page's samples in page order against a running stack, as a reader following the page would.

`python -m tests.docs.page_runner docs/PAGE.md BASE_URL`, with the stack's settings in the environment
(DATABASE_URL, REDIS_URL, OBJECTS_TEST_OBJECTS=1 so that the page's ```python register blocks are loaded):
```pycon sessions run with doctest in one namespace, ```python blocks are exec'd in it, ```console commands run
with bash in the repository (variables carry over), and a ```json admin-edit=Type/key/entry block is typed into
the admin's state-entry form as the page tells the reader to, signed in as the demo's `admin`. Prints each
failure and exits 1 when there was one. Run by tests/docs/test_build_your_own.py in a process of its own, so
that its Python calls use the stack's database rather than the test session's.
"""

from __future__ import annotations

import doctest
import io
import os
import re
import sys
import tempfile
import types
from pathlib import Path

import django

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ADMIN = ("admin", "admin-pass-123")  # manage.py load_demo's staff user


def admin_edit(base_url: str, spec: str, value: str) -> str | None:
    """Sign in to the admin as a browser does, open the instance's page, edit one state entry with its form."""
    import httpx

    type_name, key, entry = spec.split("/", 2)
    with httpx.Client(base_url=base_url, timeout=30, follow_redirects=True) as browser:
        form = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        signed = browser.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token.group(1), "username": ADMIN[0], "password": ADMIN[1]},
        )
        if "Log out" not in signed.text:
            return f"could not sign in to the admin: {signed.status_code}"
        listing = browser.get("/admin/objects/instance/", params={"q": key})
        found = [
            pk
            for row in re.findall(r"<tr.*?</tr>", listing.text, re.S)
            for pk in re.findall(rf'href="/admin/objects/instance/(\d+)/change/[^"]*">{type_name}</a>', row)
            if re.search(rf'class="field-key">{re.escape(key)}<', row)
        ]
        if not found:
            return f"no instance {type_name}/{key} in the admin's list: {listing.text[-3000:]}"
        page = browser.get(f"/admin/objects/instance/{found[0]}/change/")
        edit = f"/admin/objects/instance/{found[0]}/state/edit/?name={entry}"
        if edit.split("?")[0] not in page.text:
            return f"the instance's page has no link to edit its state: {page.status_code}"
        form = browser.get(edit)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        version = re.search(r'name="version" value="(\d+)"', form.text)
        if not (token and version):
            return f"no edit form for {spec}: {form.status_code} {form.text[:300]}"
        saved = browser.post(
            edit,
            data={"csrfmiddlewaretoken": token.group(1), "name": entry, "value": value, "version": version.group(1)},
        )
        if saved.status_code != 200 or f"Set {entry!r}" not in saved.text.replace("&#x27;", "'"):
            return f"the admin did not save {spec}: {saved.status_code} {saved.text[:500]}"
    return None


def run(page: Path, base_url: str) -> list[str]:
    from tests.docs.samples import ROOT, blocks, console_commands, run_console
    from tests.testobjects import docs_examples

    failures: list[str] = []
    module = types.ModuleType(f"docs_page_{page.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    globs = module.__dict__
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    parser = doctest.DocTestParser()
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "env.sh"
        state.write_text("")
        for block in blocks(page):
            if block.kind == "register":
                if docs_examples.ERRORS:
                    return docs_examples.ERRORS
                globs.update({k: v for k, v in docs_examples.MODULES[block.where].__dict__.items() if k[:2] != "__"})
            elif block.kind == "python":
                try:
                    exec(compile(block.text, block.where, "exec"), globs)  # noqa: S102 - the doc's own sample
                except Exception as exc:  # noqa: BLE001 - report which block failed
                    failures.append(f"{block.where}: {type(exc).__name__}: {exc}")
            elif block.kind == "pycon":
                test = parser.get_doctest(block.text, globs, block.where, str(page), block.line)
                out = io.StringIO()
                result = runner.run(test, out=out.write, clear_globs=False)
                globs.update(test.globs)
                if result.failed:
                    failures.append(out.getvalue())
            elif block.kind == "console":
                for command, want in console_commands(block.text):
                    failed = run_console(command, want, where=block.where, state=state, env=env, base_url=base_url)
                    if failed:
                        failures.append(failed)
            elif block.lang == "json" and (spec := re.search(r"\badmin-edit=(\S+)", block.info)):
                problem = admin_edit(base_url, spec.group(1), block.text)
                if problem:
                    failures.append(f"{block.where}: {problem}")
            if failures:  # later steps build on this one: stop at the first failing block
                break
    return failures


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    failures = run(Path(argv[0]).resolve(), argv[1].rstrip("/"))
    for failure in failures:
        print(failure, end="\n\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
