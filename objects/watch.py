"""Live state: `GET /{prefix}/{Type}/{key}/watch` streams a key's committed state as Server-Sent Events.

Served on the web process's event loop, holding no thread: the ingress checks the request first, on the threads,
as a call of the type's shared handler, or lets staff who may view instances watch any key (`IngressView.watch`).
Each event carries the key's state with `id:` its version, so a reconnecting client's `Last-Event-ID` resumes.
Bounded: OBJECTS_WATCH_MAX streams per process.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse

from . import conf, jsoncodec
from .api.paths import decode_segment
from .api.responses import error_response
from .runtime.state import watched_from_rows
from .signals.notify import CHANGED_PREFIX
from .store.db import db, fetchall
from .store.sql import WATCHED_SQL

log = logging.getLogger("objects.watch")

WATCH_SCOPE = "objects.watch"  # set in the scope the loop gives the threads: they answer 204 instead of 501
WATCH_ALLOWED = "X-Objects-Watch"  # the threads' 204 carries it: checked, stream it (never sent to the client)
RETRY_MS = 1000  # the client's reconnection delay (the stream ends on shutdown: it reconnects to another process)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Watcher:
    """One open stream: woken when its key's state may have changed."""

    __slots__ = ("wake",)

    def __init__(self) -> None:
        self.wake = asyncio.Event()


class Watches:
    """The process's watch streams and its one Redis subscription to the committed changes, which runs while any
    stream is open and wakes the streams of the changed keys (each then reads its key's state)."""

    def __init__(self, app: Any, redis: Callable[[], Any]) -> None:
        self.app = app  # objects.asgi.Application: its threads, its PostgreSQL pool and its answers' headers
        self.redis = redis
        self.head = app.head
        self.keys: dict[tuple[str, str], set[Watcher]] = {}
        self.open = 0
        self.closing: asyncio.Event | None = None
        self.listener: asyncio.Task[None] | None = None
        self.signals = False

    def takes(self, scope: Scope) -> bool:
        """A GET of `/{prefix}/{Type}/{key}/watch`, decided from the scope alone."""
        path = scope.get("raw_path") or b""
        if scope["method"] != "GET" or scope.get("root_path") or not path.startswith(self.head):
            return False
        return path.endswith(b"/watch") and path.count(b"/", len(self.head)) == 2

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.closing is None:
            self.closing = asyncio.Event()
        limit = conf.get("OBJECTS_WATCH_MAX")
        if self.open >= limit or self.closing.is_set():
            response = error_response(503, f"This server process has {limit} watchers open, its limit; retry shortly.")
            response["Retry-After"] = "5"
            await _respond(send, self.app.finished(ASGIRequest(scope, io.BytesIO()), response))
            return
        self.open += 1
        try:
            status, headers, body = await self.check(scope)
            if status != 204 or not any(name == WATCH_ALLOWED.lower().encode() for name, _ in headers):
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await self.stream(scope, receive, send, headers)
        finally:
            self.open -= 1

    async def check(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The ingress's answer on the threads (authentication, rate limits, type, key, access rule): 204 when the
        stream may start, else the error to send as it is."""
        status, headers, chunks = 500, [], []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message.get("body"):
                chunks.append(message["body"])

        async def no_body() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await self.app.to_threads({**scope, WATCH_SCOPE: True}, no_body, capture)
        return status, headers, b"".join(chunks)

    async def stream(self, scope: Scope, receive: Receive, send: Send, checked: list[tuple[bytes, bytes]]) -> None:
        segments = scope["raw_path"][len(self.head) :].split(b"/")[:2]
        type_name, key = (decode_segment(s.decode("latin-1")) for s in segments)
        sent = _last_event_id(scope)
        dropped = (b"content-length", b"content-type", WATCH_ALLOWED.lower().encode())
        headers = [(n, v) for n, v in checked if n not in dropped]
        headers += [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # a proxy (nginx) passes each event on at once
        ]
        watcher = Watcher()
        self.keys.setdefault((type_name, key), set()).add(watcher)
        self._listen()
        gone = asyncio.ensure_future(_disconnected(receive))
        closing = asyncio.ensure_future(self.closing.wait())  # type: ignore[union-attr]
        heartbeat = conf.get("OBJECTS_WATCH_HEARTBEAT")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True})
            watcher.wake.set()  # the state now: sent unless the client's Last-Event-ID is its version
            while not gone.done() and not closing.done():
                if watcher.wake.is_set():
                    watcher.wake.clear()
                    try:
                        version, state = await self.read(type_name, key)
                    except Exception as exc:  # noqa: BLE001 - the database is unavailable: try again shortly
                        log.warning("watch %s/%s: could not read the state: %s", type_name, key, exc)
                        await asyncio.sleep(1)
                        watcher.wake.set()
                        continue
                    if version != sent:  # newer; or older, when the key was deleted and made again since
                        data = jsoncodec.dumps({"version": version, "state": state})
                        await send({"type": "http.response.body", "body": _event(version, data), "more_body": True})
                        sent = version
                woken = asyncio.ensure_future(watcher.wake.wait())
                await asyncio.wait({woken, gone, closing}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
                if not woken.done():
                    woken.cancel()
                    if not gone.done() and not closing.done():
                        await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while an event was sent
            pass
        finally:
            gone.cancel()
            closing.cancel()
            watchers = self.keys.get((type_name, key))
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self.keys[(type_name, key)]

    async def read(self, type_name: str, key: str) -> tuple[int, dict[str, Any]]:
        """The key's committed version and state: on the loop's PostgreSQL connection, elsewhere in a short thread."""
        if self.app.on_loop:
            rows = await self.app.postgres.fetchall(WATCHED_SQL, [type_name, key])
        else:
            rows = await asyncio.to_thread(_read, type_name, key)
        return watched_from_rows(rows)

    # -- the subscription ---------------------------------------------------------------------------------
    def _listen(self) -> None:
        if self.listener is None or self.listener.done():
            self.listener = asyncio.get_running_loop().create_task(self._subscribed())
        self._catch_exit()

    async def _subscribed(self) -> None:
        """Receive the committed changes while any stream is open; after (re)subscribing every stream reads again
        (a change published meanwhile was missed)."""
        while self.keys:
            pubsub = None
            try:
                pubsub = self.redis().pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(CHANGED_PREFIX + "*")
                for watchers in list(self.keys.values()):
                    for watcher in watchers:
                        watcher.wake.set()
                while self.keys:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._changed(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis unavailable: subscribe again shortly
                log.warning("watch: the subscription to state changes failed, again in 1 s: %s", exc)
                await asyncio.sleep(1)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # noqa: BLE001,S110 - a broken connection: nothing more to close
                        pass

    def _changed(self, message: dict[str, Any]) -> None:
        channel = message.get("channel") or b""
        type_name = (channel.decode() if isinstance(channel, bytes) else channel)[len(CHANGED_PREFIX) :]
        try:
            key = jsoncodec.loads(message["data"])["key"]
        except (ValueError, KeyError, TypeError):
            return
        for watcher in self.keys.get((type_name, key), ()):
            watcher.wake.set()

    # -- shutdown -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """End every stream (each sends its last bytes and closes); later watches get 503."""
        if self.closing is not None:
            self.closing.set()

    def _catch_exit(self) -> None:
        """End the streams when the server is told to stop: uvicorn waits for open responses before its lifespan
        shutdown, so a stream would hold the shutdown. Its own SIGINT/SIGTERM handlers are kept and called."""
        if self.signals or threading.current_thread() is not threading.main_thread():
            return
        self.signals = True
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
                loop.call_soon_threadsafe(self.close)
                previous(signum, frame)

            signal.signal(sig, handler)


def _read(type_name: str, key: str) -> list[Any]:
    close_old_connections()  # this thread's connection may have expired since its last use
    return fetchall(db(), WATCHED_SQL, [type_name, key])


def _last_event_id(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _event(version: int, data: str) -> bytes:
    return f"id: {version}\ndata: {data}\n\n".encode()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, response: HttpResponse) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
