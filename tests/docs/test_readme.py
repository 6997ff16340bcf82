"""README.md's curl examples, run as a reader would against a live server with the demo data: each request
must succeed (curl -f fails on a 4xx or 5xx), so the README cannot show a call the access rules refuse."""

from __future__ import annotations

import io
import os
import subprocess

from django.core.management import call_command
from django.db import connections

from tests.docs.samples import ROOT, blocks

LOCAL_URL = "http://127.0.0.1:8000"


def test_the_readmes_curl_examples_succeed_against_the_demo(live_web):
    call_command("load_demo", stdout=io.StringIO())
    text = (ROOT / "README.md").read_text()
    section_line = text[: text.index("## Call objects with curl")].count("\n") + 1
    block = next(b for b in blocks(ROOT / "README.md") if b.line > section_line and b.lang == "console")
    database = connections["default"].settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    }
    script = 'set -e -o pipefail\ncurl() { command curl --fail-with-body "$@"; echo; }\n' + block.text.replace(
        LOCAL_URL, live_web.url
    )
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"README.md:{block.line}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.count("\n") >= 3 and '"invocationId"' in done.stdout, done.stdout
