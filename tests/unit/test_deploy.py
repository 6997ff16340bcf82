"""deploy/ starts the same processes, with the same command lines, as scripts/stack.py builds for `make run` and
the benchmark (`services`): the Procfile (honcho) and the systemd units differ only in where Python and the
project live, the port's variable and systemd's escaping."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from stack import PYTHON, services, web_command  # noqa: E402

DEPLOY = ROOT / "deploy"
SCHEDULE = ROOT / "var" / "celerybeat-schedule"
INSTALLED = "/srv/django-virtual-objects/.venv/bin/python"


def expected() -> dict[str, list[str]]:
    """stack.py's commands for one host, as a user types them from the project's root."""
    commands = services("127.0.0.1", "$PORT", SCHEDULE)  # type: ignore[arg-type]
    commands["web"] = web_command("127.0.0.1", "$PORT", env={})  # type: ignore[arg-type]  # not behind a proxy
    relative = {PYTHON: "python", str(ROOT / "manage.py"): "manage.py", str(SCHEDULE): "var/celerybeat-schedule"}
    return {name: [relative.get(arg, arg) for arg in argv] for name, argv in commands.items()}


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries


def exec_start(unit: str) -> list[str]:
    (line,) = [x for x in (DEPLOY / "systemd" / unit).read_text().splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    return ["python" if arg == INSTALLED else arg.replace("${PORT}", "$PORT") for arg in argv]


def test_the_procfile_runs_stack_py_command_lines():
    assert procfile() == expected()


def test_the_systemd_units_run_stack_py_command_lines():
    want = expected()
    assert exec_start("objects-web.service") == want["web"]
    assert exec_start("objects-beat.service") == want["sweeper"]
    # one unit per worker instance: worker<instance>@<Celery's host name>, systemd's % escaped
    worker = [re.sub(r"^worker%i@%%h$", "worker@%h", arg) for arg in exec_start("objects-worker@.service")]
    assert worker == want["worker"]


def test_the_units_read_the_environment_file_and_restart():
    for unit in ("objects-web.service", "objects-worker@.service", "objects-beat.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "EnvironmentFile=/etc/django-virtual-objects/env" in text
        assert "WorkingDirectory=/srv/django-virtual-objects" in text and "Restart=always" in text


def test_the_environment_example_names_only_variables_the_settings_read():
    known = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert named - {"PORT"} <= known, named - known


def test_the_web_server_runs_one_process_unless_web_concurrency_says_otherwise():
    def processes(command: list[str]) -> str | None:
        return command[command.index("--workers") + 1] if "--workers" in command else None

    # no --workers: uvicorn's own default, one process, or WEB_CONCURRENCY read by uvicorn itself
    assert processes(web_command("127.0.0.1", 8000, env={})) is None
    # from the environment or .env, so `make run` and the benchmark follow it too
    assert processes(web_command("127.0.0.1", 8000, env={"WEB_CONCURRENCY": "3"})) == "3"
    assert processes(web_command("127.0.0.1", 8000, workers=2, env={"WEB_CONCURRENCY": "3"})) == "2"
