"""docs/install.md, followed by a stranger: the wheel alone installed in a fresh virtualenv, a new project from
`startproject`, the page's blocks applied as it shows them, its object called over HTTP, its state read with
`manage.py objects state get` and seen in the admin.

Nothing is downloaded: the wheel is built offline (tests/integration/test_packaging.py's helper) and installed
with `--no-deps --no-index`; its dependencies are this repository's .venv, made visible through a .pth file.
Every command runs in the new project's folder without PYTHONPATH, so a step that needs a file of this
repository other than the wheel fails. The project uses SQLite and its own Redis database number (the test
workers' queues live in the first), and the page's PostgreSQL variant migrates a new database on the test
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import doctest
import os
import re
import signal
import socket
import subprocess
import sysconfig
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from django.core.handlers.asgi import ASGIHandler
from django.core.wsgi import get_wsgi_application
from django.db import connections

from objects.asgi import Application, wrap
from tests.docs.samples import DOCS, Block, all_blocks, blocks, console_commands
from tests.integration.test_packaging import build_wheel

PAGE = DOCS / "install.md"
LOCAL = "127.0.0.1:8000"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
REDIS_DB = 12  # the project's own: the session's test workers consume the partition queues of database 0
CALL_TIMEOUT = 60


def test_wrap_serves_djangos_wsgi_or_asgi_handler_on_its_threads():
    """`objects.asgi.wrap` takes what a project's asgi.py has: Django's WSGI handler, or its ASGI handler, which
    is replaced by the WSGI one (the threads run Django as WSGI; given the ASGI handler they would fail)."""

    async def fetch(application: Application) -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get("/no-such-page/")

    for django_app in (get_wsgi_application(), ASGIHandler()):
        application = wrap(django_app, threads=2)
        assert isinstance(application, Application)
        response = asyncio.run(fetch(application))
        assert response.status_code == 404, response.text[:300]


def test_project_blocks_are_on_the_install_page_only():
    """This test is what runs ```python project=...``` and ```console project``` blocks: on another page they
    would run nowhere."""
    elsewhere = [b.where for b in all_blocks() if b.kind == "project" and b.doc != PAGE.name]
    assert not elsewhere, f"project blocks outside docs/{PAGE.name}: {elsewhere}"


@dataclass
class Project:
    """A new project folder with its own virtualenv; the page's console commands run here, in page order."""

    folder: Path
    env: dict[str, str]
    port: int
    background: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.folder.parent / "env.sh"
        self.state.write_text("")

    def local(self, text: str) -> str:
        return text.replace(LOCAL, f"127.0.0.1:{self.port}").replace("--port 8000", f"--port {self.port}")

    def write(self, block: Block) -> None:
        path = self.folder / block.project_file
        assert path.resolve().is_relative_to(self.folder.resolve()), block.where
        if "append" in block.flags:
            assert path.is_file(), f"{block.where}: {block.project_file} does not exist to append to"
            path.write_text(path.read_text() + "\n\n" + block.text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)

    def run(self, block: Block) -> list[str]:
        """Each command with bash; variables carry over (`TOKEN=...`); output compared like tests/docs."""
        failures = []
        checker = doctest.OutputChecker()
        for command, want in console_commands(block.text):
            script = f"source {self.state}\nset -a\n{self.local(command)}\nrc=$?\nexport -p > {self.state}\nexit $rc\n"
            done = subprocess.run(
                ["bash", "-c", script], cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120
            )
            got = done.stdout + done.stderr
            if done.returncode != 0 or (want and not checker.check_output(want + "\n", got, FLAGS)):
                failures.append(
                    f"{block.where}: $ {command}\n  exit {done.returncode}\n  expected:\n{want}\n  got:\n{got}"
                )
        return failures

    def start(self, block: Block) -> None:
        """Each command as a long-running process of its own (stopped by `stop`); a web server's port is waited
        for."""
        for command, _ in console_commands(block.text):
            log = self.folder.parent / f"{len(self.background)}.log"
            proc = subprocess.Popen(
                ["bash", "-c", f"source {self.state}\nexec {self.local(command)}"],
                cwd=self.folder,
                env=self.env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.background.append((command, proc, log))
        if any("--port" in command for command, _, _ in self.background):
            self.wait_port()

    def wait_port(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"the web server did not listen within {timeout} s\n{self.logs()}")

    def check_alive(self) -> None:
        dead = [(c, p.returncode) for c, p, _ in self.background if p.poll() is not None]
        assert not dead, f"exited: {dead}\n{self.logs()}"

    def logs(self) -> str:
        return "\n".join(f"--- $ {c}\n{log.read_text(errors='replace')[-3000:]}" for c, _, log in self.background)

    def stop(self) -> None:
        for _, proc, _ in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc, _ in self.background:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _virtualenv(path: Path) -> Path:
    """A fresh virtualenv (no pip of its own) that sees .venv's packages through a .pth file, after its own."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_outside_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project_env(venv_bin: Path, redis_url: str) -> dict[str, str]:
    """What a shell in the new project has: its virtualenv first on PATH, no variable of this repository's
    (no DJANGO_SETTINGS_MODULE, DATABASE_URL, PYTHONPATH), pip kept offline for the page's install step."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {
        **keep,
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "OBJECTS_REDIS_URL": redis_url,
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@contextlib.contextmanager
def _own_redis_database() -> Iterator[str]:
    url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"].rstrip("/")) + f"/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def _new_postgres_database() -> Iterator[dict[str, str]]:
    """A new database on the test PostgreSQL server, as the page's POSTGRES_* variables."""
    settings = connections["default"].settings_dict
    name = f"install_{os.getpid()}_{time.monotonic_ns()}"
    server = {"host": settings["HOST"], "port": settings["PORT"], "user": settings["USER"], "dbname": "postgres"}
    with psycopg.connect(**server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "POSTGRES_DB": name,
            "POSTGRES_USER": settings["USER"],
            "POSTGRES_PASSWORD": settings.get("PASSWORD") or "",
            "POSTGRES_HOST": settings["HOST"],
            "POSTGRES_PORT": str(settings["PORT"]),
        }
    finally:
        with psycopg.connect(**server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_lists(base: str, username: str, password: str, type_name: str, key: str) -> str:
    """Sign in to the admin as a browser does (the form and its CSRF token), return the instance's page; the
    management API's schema and docs pages answer the signed-in staff user."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as browser:
        form = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token, form.text[:500]
        signed = browser.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token.group(1), "username": username, "password": password},
        )
        assert signed.status_code == 200 and "Log out" in signed.text, signed.text[:1000]
        listing = browser.get("/admin/objects/instance/", params={"q": key})
        assert listing.status_code == 200, listing.text[:500]
        link = re.search(r'href="(/admin/objects/instance/\d+/change/[^"]*)"', listing.text)
        assert link and type_name in listing.text, listing.text[:2000]
        page = browser.get(link.group(1).replace("&amp;", "&"))
        assert page.status_code == 200, page.text[:500]
        for api_page in ("/api/schema/", "/api/docs/"):  # the settings' schema class, drf-spectacular's templates
            answer = browser.get(api_page)
            assert answer.status_code == 200, f"{api_page}: {answer.status_code} {answer.text[:500]}"
        return page.text


@pytest.mark.workers
def test_the_install_page_turns_a_new_project_into_a_host(tmp_path):
    page = blocks(PAGE)
    steps = [b for b in page if b.kind == "project"]
    assert steps, "docs/install.md has no project blocks"
    started = time.monotonic()
    wheel = build_wheel(tmp_path / "build")
    python = _virtualenv(tmp_path / "venv")
    folder = tmp_path / "home" / "mysite"
    folder.mkdir(parents=True)
    (folder / wheel.name).write_bytes(wheel.read_bytes())
    with _own_redis_database() as redis_url:
        project = Project(folder, _project_env(python.parent, redis_url), _free_port())
        try:
            for block in steps:
                if "variant=" in block.info:
                    continue
                if block.lang == "python":
                    project.write(block)
                elif "background" in block.flags:
                    project.start(block)
                else:
                    failures = project.run(block)
                    assert not failures, "\n\n".join(failures) + "\n" + project.logs()
            project.check_alive()

            where = subprocess.run(
                [python, "-c", "import objects, django; print(objects.__file__)"],
                cwd=folder,
                env=project.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert where.startswith(str(tmp_path / "venv")), f"objects imported from {where}, not the wheel"
            assert not (folder / "objects").exists()

            password = re.search(r"DJANGO_SUPERUSER_PASSWORD=(\S+)", PAGE.read_text()).group(1)
            page_html = _admin_lists(f"http://127.0.0.1:{project.port}", "admin", password, "Greeter", "ada")
            assert "count" in page_html
        finally:
            project.stop()

    with _new_postgres_database() as database:
        variant = [b for b in steps if "variant=postgres" in b.info]
        assert variant, "the page's PostgreSQL settings are gone"
        for block in variant:
            project.write(block)
        project.env = {**project.env, **database}
        (migrate,) = [b for b in steps if b.lang == "console" and "manage.py migrate" in b.text]
        failures = project.run(migrate)  # and `check`, on PostgreSQL
        assert not failures, "\n".join(failures)
    assert time.monotonic() - started < 120
