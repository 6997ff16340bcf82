"""Live state over Server-Sent Events (`GET /ingress/{Type}/{key}/watch`), over real HTTP against uvicorn: committed
changes arrive as events whose id is the state's version, Last-Event-ID resumes, a watch needs the access of a
shared handler, a process serves a bounded number of watchers, a failed call emits nothing, a shutdown ends the
streams, and a server without the event loop says it cannot stream."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from objects.services import state_edit
from tests.support import WebServer, _test_database_url

pytestmark = pytest.mark.workers


class Stream:
    """An open event stream read by a thread: `next()` gives the next event ({"id", "data"}) or comment."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._cm = self.client.stream("GET", url, headers=headers)
        self.response = self._cm.__enter__()
        self.items: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.ended = threading.Event()
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if fields:
                        self.items.put(fields)
                    fields = {}
                elif line.startswith(":"):
                    self.items.put({"comment": line[1:].strip()})
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        self.ended.set()
        self.items.put(None)

    def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event with data (comments and the retry field skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.items.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert item is not None, "the stream ended"
            if "data" in item:
                return {"id": int(item["id"]), **json.loads(item["data"])}

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """The events with data that arrive within `seconds`."""
        found, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.items.get(timeout=left)
            except queue.Empty:
                break
            if item and "data" in item:
                found.append(item)
        return found

    def close(self) -> None:
        """Go away as a browser tab does: the connection is shut down (the reading thread sees its end)."""
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self.response.status_code == 200:
            self.ended.wait(2)
        self._cm.__exit__(None, None, None)
        self.client.close()


def token_for(username: str, **extra: Any) -> dict[str, str]:
    user = get_user_model().objects.create_user(username, **extra)
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def streams():
    opened: list[Stream] = []

    def open_stream(base: str, path: str, headers: dict[str, str]) -> Stream:
        stream = Stream(f"{base}/ingress/{path}", headers)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


def call(base: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/ingress/{path}", json=body, headers=headers, timeout=30)


def test_a_committed_change_arrives_as_an_event_with_its_version(live_web, streams):
    auth = token_for("wanda")
    call(live_web.url, "Recorder/w1/append", {"value": 1}, auth)
    stream = streams(live_web.url, "Recorder/w1/watch", auth)
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    first = stream.next_event()
    assert first["state"] == {"items": [1]} and first["id"] == first["version"]
    started = time.monotonic()
    call(live_web.url, "Recorder/w1/append", {"value": 2}, auth)
    second = stream.next_event(timeout=2)
    assert time.monotonic() - started < 2
    assert second["state"] == {"items": [1, 2]} and second["version"] == first["version"] + 1


def test_an_operators_edit_is_an_event_too(live_web, streams):
    auth = token_for("wanda")
    stream = streams(live_web.url, "Recorder/w2/watch", auth)
    assert stream.next_event() == {"id": 0, "version": 0, "state": {}}  # no key yet: nothing in it
    call(live_web.url, "Recorder/w2/append", {"value": 1}, auth)
    seen = stream.next_event(timeout=2)
    state_edit(type_name="Recorder", key="w2", expected_version=seen["version"], set_entries={"items": "oops"})
    edited = stream.next_event(timeout=2)
    assert edited["state"] == {"items": "oops"} and edited["version"] == seen["version"] + 1


def test_a_state_expired_by_the_sweeper_is_an_event_too(live_web, streams):
    from datetime import timedelta

    from django.utils import timezone

    from objects.models import Instance
    from objects.worker.sweeper import sweep

    staff = token_for("operator", is_staff=True, is_superuser=True)
    call(live_web.url, "Ephemeral/old/put", {"value": "a"}, staff)
    stream = streams(live_web.url, "Ephemeral/old/watch", staff)
    assert stream.response.status_code == 200
    before = stream.next_event()
    assert before["state"] == {"value": "a"}
    Instance.objects.filter(type_name="Ephemeral", key="old").update(changed_at=timezone.now() - timedelta(minutes=2))
    assert sweep()["state_expired"] == 1
    assert stream.next_event(timeout=2) == {"id": before["version"] + 1, "version": before["version"] + 1, "state": {}}


def test_last_event_id_resumes_where_the_client_was(live_web, streams):
    auth = token_for("wanda")
    for value in (1, 2):
        call(live_web.url, "Recorder/w3/append", {"value": value}, auth)
    current = streams(live_web.url, "Recorder/w3/watch", auth).next_event()
    up_to_date = streams(live_web.url, "Recorder/w3/watch", {**auth, "Last-Event-ID": str(current["version"])})
    assert up_to_date.quiet(1.0) == []  # nothing new since its last event
    behind = streams(live_web.url, "Recorder/w3/watch", {**auth, "Last-Event-ID": str(current["version"] - 1)})
    assert behind.next_event(timeout=2) == current  # older: the state now, at once
    call(live_web.url, "Recorder/w3/append", {"value": 3}, auth)
    assert up_to_date.next_event(timeout=2)["state"] == {"items": [1, 2, 3]}


def test_a_failed_call_emits_nothing(live_web, streams):
    auth = token_for("wanda")
    call(live_web.url, "Recorder/w4/append", {"value": 1}, auth)
    stream = streams(live_web.url, "Recorder/w4/watch", auth)
    first = stream.next_event()
    refused = call(live_web.url, "Recorder/w4/refuse", {"message": "no"}, auth)
    assert refused.status_code == 422
    assert stream.quiet(1.0) == []  # its write was rolled back: no event
    call(live_web.url, "Recorder/w4/append", {"value": 2}, auth)
    after = stream.next_event(timeout=2)
    assert after["state"] == {"items": [1, 2]} and after["version"] == first["version"] + 1


def test_watching_needs_the_access_of_a_shared_handler(live_web, streams):
    token_for("alice")
    bob = token_for("bob")
    denied = httpx.get(f"{live_web.url}/ingress/ShoppingCart/alice/watch", headers=bob, timeout=10)
    assert (
        denied.status_code == 403
        and denied.json()["message"] == "bob may not call ShoppingCart.get_cart on key 'alice'."
    )
    anonymous = httpx.get(f"{live_web.url}/ingress/ShoppingCart/alice/watch", timeout=10)
    assert anonymous.status_code == 401 and set(anonymous.json()) >= {"code", "message"}
    unknown = httpx.get(f"{live_web.url}/ingress/NoSuchType/k/watch", headers=bob, timeout=10)
    assert unknown.status_code == 404
    own = streams(live_web.url, "ShoppingCart/bob/watch", bob)
    assert own.response.status_code == 200 and own.next_event()["state"] == {}


def test_a_visitor_watches_their_own_anonymous_cart_by_session_cookie(live_web, streams):
    from tests.integration.shop_fixtures import make_product

    make_product("MUG", name="Mug", price=1299, stock=10)
    visitor = httpx.Client(base_url=live_web.url, timeout=30)
    visitor.get("/")
    added = visitor.post(
        "/cart/add/",
        data={"sku": "MUG", "quantity": 2, "csrfmiddlewaretoken": visitor.cookies["csrftoken"]},
        headers={"Accept": "application/json"},
    )
    assert added.status_code == 200
    path = f"ShoppingCart/anon%3A{visitor.cookies['sessionid']}/watch"
    cookie = {"Cookie": f"sessionid={visitor.cookies['sessionid']}"}
    own = streams(live_web.url, path, cookie)
    assert own.response.status_code == 200 and own.next_event()["state"]["lines"][0]["quantity"] == 2
    stranger = httpx.get(f"{live_web.url}/ingress/{path}", timeout=10)
    assert stranger.status_code == 401
    visitor.close()


@pytest.mark.django_db
def test_without_the_event_loop_a_watch_is_501():
    response = Client().get("/ingress/Recorder/k/watch")
    assert response.status_code == 401  # the checks come first
    user = get_user_model().objects.create_user("wsgi-user")
    auth = f"Token {Token.objects.create(user=user).key}"
    response = Client().get("/ingress/Recorder/k/watch", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 501 and "ASGI" in response.json()["message"]
    denied = Client().get("/ingress/ShoppingCart/someone/watch", HTTP_AUTHORIZATION=auth)  # the same rules
    assert denied.status_code == 403 and "may not call ShoppingCart.get_cart" in denied.json()["message"]


@pytest.fixture
def capped_server(live, django_db_blocker, monkeypatch):
    """A web server of its own, one process, allowing one watcher, with a heartbeat every half second."""
    monkeypatch.setenv("OBJECTS_WATCH_MAX", "1")
    monkeypatch.setenv("OBJECTS_WATCH_HEARTBEAT", "0.5")
    with django_db_blocker.unblock():
        server = WebServer(_test_database_url(), workers=1)
    server.start()
    yield server
    server.stop()


def test_watchers_are_capped_per_process_and_end_cleanly_on_shutdown(capped_server, streams):
    auth = token_for("wanda")
    first = streams(capped_server.url, "Recorder/cap/watch", auth)
    assert first.response.status_code == 200 and first.next_event()["version"] == 0
    refused = streams(capped_server.url, "Recorder/cap/watch", auth)
    assert refused.response.status_code == 503 and refused.response.headers["Retry-After"] == "5"
    refused.response.read()
    assert refused.response.json() == {
        "code": 503,
        "message": "This server process has 1 watchers open, its limit; retry shortly.",
        "source": "ingress",
    }
    assert first.items.get(timeout=3) == {"comment": "keep-alive"}  # the heartbeat
    first.close()  # a client that goes away frees its place
    time.sleep(0.3)
    second = streams(capped_server.url, "Recorder/cap/watch", auth)
    assert second.response.status_code == 200 and second.next_event()["version"] == 0
    started = time.monotonic()
    capped_server.stop()  # SIGTERM: the stream ends, the server exits
    assert capped_server.proc.poll() is not None and time.monotonic() - started < 5
    assert second.ended.wait(2)
