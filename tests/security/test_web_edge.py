"""The web edge over real HTTP: one rule set on both sides of the web process (objects/asgi.py), the event loop
(token calls and sends) and the threads (Django: a query string, an idempotency key, a session, any other
path). Request bodies sent chunked, header names with underscores, the Host header."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from stack import free_port, wait_port, web_command  # scripts/ is on the path (tests/support.py)

from objects.models import Instance, StateEntry
from tests.support import ROOT, _test_database_url, reap

from .conftest import RawHTTP, RawResponse

pytestmark = pytest.mark.workers

SIDES = ["loop", "threads"]
MB = 1024 * 1024


def on_side(path: str, side: str) -> str:
    """The path as the given side answers it: the loop never takes a request with a query string."""
    return path + ("?via=threads" if side == "threads" else "")


def request(
    base: RawHTTP, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> RawResponse:
    """RawHTTP's request, with a Host header of the caller's when it gives one (http.client adds its own)."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    conn = http.client.HTTPConnection(base.host, base.port, timeout=60)
    try:
        conn.putrequest(method, target, skip_host="Host" in headers, skip_accept_encoding=True)
        if body is not None:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        answer = conn.getresponse()
        return RawResponse(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


def warm(raw_http: RawHTTP, person, side: str) -> None:
    """For the loop: the token in every web process's cache (the first use of a token in a process is looked
    up by the threads), by a few shared calls, each on its own connection."""
    if side == "loop":
        for _ in range(8):
            assert raw_http.request("POST", "/ingress/Counter/warm%2Fup/get", b"", person.header).status == 200


def counter_value(key: str) -> int | None:
    entry = StateEntry.objects.filter(instance__type_name="Counter", instance__key=key, name="value").first()
    return None if entry is None else entry.value


def ingress_error(response: RawResponse, status: int) -> str:
    assert response.status == status, (response.status, response.body[:300])
    body = response.json()
    assert body["code"] == status and body["source"] == "ingress" and body["message"], body
    assert response.headers.get("x-restate-error-source") == "ingress"
    return body["message"]


# -- chunked request bodies ----------------------------------------------------------------------------
@dataclass
class Chunked:
    response: RawResponse
    sent: int  # body bytes sent before the server answered or stopped reading
    closed: bool  # the server closed the connection after its answer


def chunked_request(
    base: RawHTTP, method: str, target: str, chunks: Iterable[bytes], headers: dict[str, str]
) -> Chunked:
    """Send the body with `Transfer-Encoding: chunked`, chunk by chunk, stopping as soon as the server
    answers (or stops reading and closes)."""
    sock = socket.create_connection((base.host, base.port), timeout=30)
    try:
        head = [f"{method} {target} HTTP/1.1", f"Host: {base.host}:{base.port}", "Transfer-Encoding: chunked"]
        head += [f"{name}: {value}" for name, value in {"Content-Type": "application/json", **headers}.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:  # an answer already: stop sending
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all; read that answer
        answer = http.client.HTTPResponse(sock, method=method)
        answer.begin()
        response = RawResponse(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        sock.settimeout(5)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
        return Chunked(response, sent, closed)
    finally:
        sock.close()


def pieces(data: bytes, size: int = 3) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def large(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"by": 5, "pad": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


@pytest.mark.parametrize("side", SIDES)
def test_a_chunked_body_is_read_whole_on_both_sides(live_web, raw_http, staff, side):
    key = f"chunked-{side}/x"
    warm(raw_http, staff, side)
    target = on_side(f"/ingress/Counter/{quote(key, safe='')}/increment", side)
    result = chunked_request(raw_http, "POST", target, pieces(b'{"by": 5}'), staff.header)
    assert result.response.status == 200, result.response.body[:300]
    assert result.response.json() == 5
    assert counter_value(key) == 5


@pytest.mark.parametrize("side", SIDES)
def test_a_chunked_body_over_the_limit_is_refused_without_reading_the_rest(live_web, raw_http, staff, side):
    key = f"chunked-large-{side}/x"
    warm(raw_http, staff, side)
    total = 50 * MB
    target = on_side(f"/ingress/Counter/{quote(key, safe='')}/increment", side)
    result = chunked_request(raw_http, "POST", target, large(total), staff.header)
    message = ingress_error(result.response, 413)
    assert "limit" in message and str(MB) in message, message
    assert result.closed, "the connection stayed open: the rest of the body would be read and dropped"
    assert result.sent < total // 2, f"{result.sent} bytes sent before the answer"
    assert counter_value(key) is None
    assert raw_http.request("POST", "/ingress/Counter/still%2Fserving/get", b"", staff.header).status == 200


def test_a_chunked_body_reaches_the_management_api(live_web, raw_http, staff):
    made = raw_http.request("POST", "/ingress/Counter/chunked-api%2Fx/increment", b"{}", staff.header)
    assert made.status == 200, made.body[:300]
    instance = Instance.objects.get(type_name="Counter", key="chunked-api/x")
    body = json.dumps({"entries": {"note": "from a chunked body"}}).encode()
    result = chunked_request(raw_http, "PATCH", f"/api/instances/{instance.pk}/state/", pieces(body, 7), staff.header)
    assert result.response.status == 200, result.response.body[:300]
    assert result.response.json()["state"]["note"] == "from a chunked body"


# -- header names with underscores ---------------------------------------------------------------------
@pytest.mark.parametrize("side", SIDES)
def test_header_names_with_underscores_are_dropped_on_both_sides(live_web, raw_http, staff, side):
    """`Idempotency_Key` is not `Idempotency-Key`: dropped, as Django's ASGI handler and common proxies drop
    such names (a WSGI environ cannot tell `_` from `-`), so two sends are two invocations."""
    warm(raw_http, staff, side)
    target = on_side(f"/ingress/Counter/underscore-{side}%2Fx/increment/send", side)
    headers = {**staff.header, "Idempotency_Key": "same-key"}
    answers = [raw_http.request("POST", target, b'{"by": 1}', headers) for _ in range(2)]
    assert [a.status for a in answers] == [202, 202], [a.body[:200] for a in answers]
    assert [a.json()["status"] for a in answers] == ["Accepted", "Accepted"]
    assert answers[0].json()["invocationId"] != answers[1].json()["invocationId"]


# -- the Host header -------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", SIDES)
def test_a_host_not_in_allowed_hosts_is_refused_on_both_sides(live_web, raw_http, staff, side):
    key = f"host-{side}/x"
    warm(raw_http, staff, side)
    target = on_side(f"/ingress/Counter/{quote(key, safe='')}/increment", side)
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        refused = request(raw_http, "POST", target, b'{"by": 1}', {**staff.header, "Host": host})
        message = ingress_error(refused, 400)
        assert "Host" in message and host in message, message
    assert counter_value(key) is None
    allowed = request(raw_http, "POST", target, b'{"by": 1}', {**staff.header, "Host": f"localhost:{raw_http.port}"})
    assert allowed.status == 200, allowed.body[:300]
    assert counter_value(key) == 1


def test_a_host_not_in_allowed_hosts_is_refused_on_every_ingress_path(live_web, raw_http, staff):
    """Without a session cookie the ingress skips CommonMiddleware, which checks the host of every other
    request: health, a send and an anonymous call get the same 400."""
    evil = {"Host": "evil.example"}
    for method, target, headers in (
        ("GET", "/ingress/restate/health", evil),
        ("POST", "/ingress/Counter/host%2Fsend/increment/send", {**staff.header, **evil}),
        ("POST", "/ingress/Counter/host%2Fanon/increment", evil),
    ):
        ingress_error(request(raw_http, method, target, b"{}" if method == "POST" else None, headers), 400)
    assert request(raw_http, "GET", "/healthz", None, evil).status == 400  # Django's own check, as before


# -- proxy headers ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def server_with(django_db_blocker, monkeypatch, database_url: str = "", **env: str) -> Iterator[RawHTTP]:
    """The production web server (scripts/stack.py `web_command`, one process) on the test database (or
    `database_url`), its command and its environment built with `env` set."""
    if not database_url:
        with django_db_blocker.unblock():
            database_url = _test_database_url()
    for name in ("BEHIND_PROXY", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    log = Path(os.environ.get("DVO_TEST_TMP", "/tmp")) / f"web-edge-{port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            web_command("127.0.0.1", port, workers=1),
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_port(port, what=f"the web server (log: {log})")
        yield RawHTTP(f"http://127.0.0.1:{port}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        reap(proc, timeout=5)


PROMETHEUS = "10.9.8.7"  # the address allowed to read /metrics in these servers
PROXY_ENV = {"OBJECTS_METRICS_ALLOW": PROMETHEUS, "SECURE_HSTS_SECONDS": "3600"}
HTTPS = {"X-Forwarded-Proto": "https"}


def hsts(response: RawResponse) -> bool:
    """The answer of a request Django took for HTTPS (SecurityMiddleware adds HSTS to those only)."""
    return "strict-transport-security" in response.headers


def test_forwarded_headers_mean_nothing_unless_behind_a_proxy(live, django_db_blocker, monkeypatch, staff):
    """uvicorn's defaults believe X-Forwarded-For and -Proto from a loopback peer: anything on the host could
    read /metrics as an allowed address, or pass for HTTPS. Without BEHIND_PROXY=1 they are ignored."""
    with server_with(django_db_blocker, monkeypatch, **PROXY_ENV) as web:
        spoofed = request(web, "GET", "/metrics", None, {"X-Forwarded-For": PROMETHEUS})
        assert spoofed.status == 403, spoofed.body[:200]
        assert not hsts(request(web, "GET", "/healthz", None, HTTPS))  # the threads
        warm(web, staff, "loop")
        call = request(web, "POST", "/ingress/Counter/proxy%2Fx/get", b"", {**staff.header, **HTTPS})
        assert call.status == 200 and not hsts(call), (call.status, call.headers)  # the event loop


def test_behind_a_proxy_forwarded_headers_are_believed_from_its_address(live, django_db_blocker, monkeypatch, staff):
    with server_with(
        django_db_blocker, monkeypatch, BEHIND_PROXY="1", FORWARDED_ALLOW_IPS="127.0.0.1", **PROXY_ENV
    ) as web:
        assert request(web, "GET", "/metrics", None, {"X-Forwarded-For": PROMETHEUS}).status == 200
        assert request(web, "GET", "/metrics", None, {"X-Forwarded-For": "10.0.0.99"}).status == 403
        assert hsts(request(web, "GET", "/healthz", None, HTTPS))
        warm(web, staff, "loop")
        assert hsts(request(web, "POST", "/ingress/Counter/proxy%2Fx/get", b"", {**staff.header, **HTTPS}))


def test_behind_a_proxy_forwarded_headers_from_other_addresses_mean_nothing(
    live, django_db_blocker, monkeypatch, staff
):
    """The proxy is at 10.0.0.1; a request from anywhere else (here loopback) claims nothing, for uvicorn and
    for Django (which trusted X-Forwarded-Proto from any peer with BEHIND_PROXY=1)."""
    with server_with(
        django_db_blocker, monkeypatch, BEHIND_PROXY="1", FORWARDED_ALLOW_IPS="10.0.0.1", **PROXY_ENV
    ) as web:
        assert request(web, "GET", "/metrics", None, {"X-Forwarded-For": PROMETHEUS}).status == 403
        assert not hsts(request(web, "GET", "/healthz", None, HTTPS))
        warm(web, staff, "loop")
        assert not hsts(request(web, "POST", "/ingress/Counter/proxy%2Fx/get", b"", {**staff.header, **HTTPS}))


# -- what /healthz tells whom ----------------------------------------------------------------------------
def signed_in(person) -> dict[str, str]:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(person.user)
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"}


def test_healthz_tells_only_staff_why_redis_is_down(live, django_db_blocker, monkeypatch, staff, alice):
    closed = free_port()  # nothing listens there
    with server_with(django_db_blocker, monkeypatch, REDIS_URL=f"redis://127.0.0.1:{closed}/0") as web:
        for who, headers in (("anonymous", {}), ("a signed-in user", signed_in(alice))):
            answer = request(web, "GET", "/healthz", None, headers)
            assert answer.status == 503, (who, answer.body[:300])
            body = answer.json()
            assert body["down"] == ["redis", "workers"] and body["redis"] == {"ok": False, "error": "unavailable"}, (
                who,
                body,
            )
            assert str(closed) not in answer.body.decode(), (who, body)
        for_staff = request(web, "GET", "/healthz", None, signed_in(staff)).json()
        assert str(closed) in for_staff["redis"]["error"], for_staff  # the client's own message


def test_healthz_tells_strangers_no_database_error(live, django_db_blocker, monkeypatch):
    closed = free_port()
    with server_with(django_db_blocker, monkeypatch, database_url=f"postgres://nobody@127.0.0.1:{closed}/x") as web:
        answer = request(web, "GET", "/healthz")
        assert answer.status == 503, answer.body[:300]
        body = answer.json()
        assert body["database"] == {"ok": False, "error": "unavailable"}, body
        assert str(closed) not in answer.body.decode() and "connection" not in answer.body.decode().lower(), body
