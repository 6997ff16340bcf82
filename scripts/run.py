"""`make run`: migrate, start Redis, the Celery worker, the sweeper and the web server; load demo data; supervise.

A process that dies is restarted with a message; Ctrl-C stops everything this command started. Running it
again works: migrations and demo data are idempotent, and a Redis already answering on the port is reused.
Without SECRET_KEY it writes a random key to var/secret_key once, which the settings read.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stack import PYTHON, ROOT, Stack, say, services

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def secret_key_file(path: Path) -> Path:
    """The file the settings read the secret key from when SECRET_KEY is unset (config/settings.py), written once
    with a random key, readable by this user only, and kept: sessions outlive a restart."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
    return path


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def stop_with_parent() -> None:
    """Stop like on Ctrl-C when the process that started this one ends without passing a signal on (`make`
    killed outright): Linux sends this process SIGTERM then (prctl PR_SET_PDEATHSIG). Elsewhere nothing
    changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent was already gone before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def ignore_stop_signals() -> None:
    """While stopping: a second SIGTERM or Ctrl-C (Ctrl-C ends `make` too, whose end sends SIGTERM here) does not
    cut the stop short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stopping(*_: object) -> None:
    """SIGTERM: stop as on Ctrl-C, once."""
    ignore_stop_signals()
    raise KeyboardInterrupt


def main() -> int:
    (ROOT / "var").mkdir(exist_ok=True)
    # the shop's demo top-up is on for trying the shop (off by default elsewhere; SHOP_DEMO_TOPUP=0 keeps it off)
    env = {"SHOP_DEMO_TOPUP": "1", **os.environ, "PYTHONUNBUFFERED": "1"}
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        secret_key_file(ROOT / "var" / "secret_key")
    stack = Stack()
    logs = ROOT / "var" / "log"
    logs.mkdir(exist_ok=True)
    try:
        if "REDIS_URL" not in env:
            if redis_answers(REDIS_PORT):
                say(f"reusing the Redis already answering on 127.0.0.1:{REDIS_PORT}")
            else:
                say(f"starting Redis on 127.0.0.1:{REDIS_PORT}")
                stack.start_redis(REDIS_PORT)
            env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
        say("applying migrations")
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        if not port_free(PORT):
            say(f"port {PORT} is already in use: stop the other server (or set PORT=8001) and run again")
            return 1
        commands = services(HOST, PORT, ROOT / "var" / "celerybeat-schedule")
        procs = {}
        for name in ("worker", "sweeper"):
            say(f"starting the {name} (log: var/log/{name}.log)")
            procs[name] = stack.spawn(name, commands[name], env=env, log=logs / f"{name}.log")
        say("loading demo data (catalog, demo users, wallets)")
        manage("load_demo", env=env)
        say("starting the web server (log: var/log/web.log)")
        procs["web"] = stack.spawn("web", commands["web"], env=env, log=logs / "web.log")
        deadline = time.monotonic() + 30
        while port_free(PORT) and time.monotonic() < deadline:
            time.sleep(0.2)
        base = f"http://{HOST}:{PORT}"
        print(
            f"""
  Django Virtual Objects is running.
    shop         {base}/
    admin        {base}/admin/
    API docs     {base}/api/docs/
    health       {base}/healthz
    ingress      {base}/ingress/<Type>/<key>/<handler>
  Press Ctrl-C to stop everything.
""",
            flush=True,
        )
        while True:
            time.sleep(1)
            for name, proc in procs.items():
                if proc.poll() is not None:
                    say(f"the {name} exited with status {proc.returncode}; restarting it (see var/log/{name}.log)")
                    procs[name] = stack.spawn(name, commands[name], env=env, log=logs / f"{name}.log")
    except KeyboardInterrupt:
        ignore_stop_signals()
        print()
        say("stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        say(f"a set-up step failed ({' '.join(map(str, exc.cmd[1:3]))}); read the error above and run `make run` again")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stopping)
    stop_with_parent()
    sys.exit(main())
