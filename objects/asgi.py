"""The web process's application (served by uvicorn): token calls and sends on the event loop, every other
request by Django's WSGI handler on a pool of threads.

Why (docs/decisions/0006-web-server.md): on the event loop a call costs its checks, one `INSERT` and one Redis
round trip, and a waiting call holds no thread.

What the loop answers itself: a POST to `/{OBJECTS_INGRESS_PREFIX}/{Type}/{key}/{handler}` or `.../send`
with an `Authorization: Token ...` header, without a session cookie, a query string or an `Idempotency-Key`
header, on PostgreSQL. Its checks are the ingress's own, in the same order with the same answers
(objects/api/ingress.py: `token_ingress`, `IngressView.request_read`, `handle_exception`), run on the loop
because they read no database: the token from the process's cache (objects/api/authentication.py), the
type's access rule, the key, the body. Then the invocation's `INSERT` on one of the loop's own PostgreSQL
connections (the statement of `submit.invocation_insert_fresh`; under load, the invocations that arrive
while the previous statement runs are inserted by one statement and one commit, objects/loop/inserts.py), and, for a
call, the ring and the wait for the done signal on the loop's Redis connections (the commands of
`doorbell.wait_done`, objects/loop/signals.py). A call to a shared
handler reads the key's state on the loop's connection (`state.committed_state`'s statement) and runs the
handler on the loop. A GET of `.../attach` or `.../output` with a token is answered on the loop too: the
invocation is found and the caller's access checked in a short thread (`IngressView.find`), and the wait for
its done signal holds no thread. Each request the loop answers is counted against the rate limits of its
client address and its user (objects/ratelimit.py, `LoopCounts`: judged at once by what the process knows, sent
to Redis in the background). The answer gets the headers SecurityMiddleware and XFrameOptionsMiddleware
give every answer.

What goes to the threads, answered there by Django from the start as under any WSGI server: every other
request, and a token call the loop cannot finish alone: a token not in the cache yet, an access rule or a
shared handler that reads the database itself (Django raises SynchronousOnlyOperation on the loop), a delay,
a new key whose row an operator deleted again before its first invocation was inserted. Nothing is written
before a request goes to the threads (a new key's row made on the loop is what the threads would make). A new
key's first invocation stays on the loop: its `INSERT` finds no key row and writes nothing, the key's row is
made (`store.sql.instance_create_statement`), and the invocation is inserted alone. The rare steps of a call's
wait run in a thread too: publishing a partition's drain (Celery), reading an invocation whose done signal
carried no outcome.

A GET of `.../{Type}/{key}/watch` (a live state stream) is served on the loop too, after the threads checked it
(objects/watch.py).

Access rules and shared handlers run on the loop, so they must not block on anything but the database (which
is detected): a network call in one would hold every request of the process meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from a2wsgi import WSGIMiddleware
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connections
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import timezone

from . import conf
from .api.ingress import TOKEN, IngressView, not_ready, outcome_response
from .api.limits import LoopWaits, RateLimited
from .api.paths import decode_segment, raw_path, route_parse
from .api.responses import error_response, send_response
from .client import output_of
from .context import Principal
from .loop.plumbing import Receive, Scope, Send, receive_body, replay, respond, unused, with_raw_uri
from .loop.signals import client, close_client, pipelined, wait_done
from .middleware import host_refused
from .models import Invocation
from .ratelimit import LoopCounts
from .routing import partition_of
from .runtime.run import run_shared
from .runtime.state import StateCache, committed_from_rows
from .runtime.submit import fresh_statement, principal_json
from .store.sql import COMMITTED_SQL, FLUSH_SQL, instance_create_statement
from .validation import validate_input
from .watch import Watches

if TYPE_CHECKING:
    from .loop.inserts import GroupInsert
    from .loop.postgres import Postgres

log = logging.getLogger("objects.asgi")


class Threaded(Exception):  # noqa: N818 - a decision, not an error
    """The request goes to the threads: the loop cannot answer it alone (nothing was written)."""


class Application:
    """The ASGI application: `config.asgi.application`."""

    def __init__(self, wsgi_app: Callable[..., Any], *, threads: int) -> None:
        self.threaded: Any = WSGIMiddleware(with_raw_uri(wsgi_app), workers=threads)  # typed with its own scopes
        self.head = ("/" + conf.get("OBJECTS_INGRESS_PREFIX").strip("/") + "/").encode()
        self.session_cookie = settings.SESSION_COOKIE_NAME.encode() + b"="
        self.on_loop = connections["default"].vendor == "postgresql"
        if self.on_loop:  # the loop's own PostgreSQL connections: psycopg is there (the `postgres` extra)
            from .loop.inserts import GroupInsert
            from .loop.postgres import Postgres

            self.postgres: Postgres = Postgres()
            self.group: GroupInsert = GroupInsert(self.postgres)
        self.waits = LoopWaits()
        self.rates = LoopCounts(pipelined)
        self.security = SecurityMiddleware(unused)
        self.xframe = XFrameOptionsMiddleware(unused)
        self.watches = Watches(self, client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and self.takes(scope):
            body, more = await receive_body(receive, conf.get("OBJECTS_MAX_BODY_BYTES"))
            try:
                response = await self.answer(scope, body)
            except Threaded:
                await self.to_threads(scope, replay(body, more, receive), send)
                return
            if more:  # the rest of the body stays unread: closing stops uvicorn from reading it to drop it
                response["Connection"] = "close"
            await respond(send, response)
        elif scope["type"] == "http" and self.watches.takes(scope):
            await self.watches.serve(scope, receive, send)  # a live state stream (objects/watch.py)
        elif scope["type"] == "http":
            await self.to_threads(scope, receive, send)
        else:
            await self.threaded(scope, receive, send)

    async def to_threads(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Django's answer, on the threads. Header names with an underscore are dropped, as Django's ASGI
        handler drops them (so on the loop too): in a WSGI environ `Idempotency_Key` would pass for
        `Idempotency-Key`. A chunked body is read here first, whole, and given to Django with its length:
        Django's WSGI request reads CONTENT_LENGTH bytes, none without it. One over OBJECTS_MAX_BODY_BYTES is
        refused here (413, the rest unread, the connection closed)."""
        headers = scope["headers"]
        chunked = underscored = False
        for name, _ in headers:
            if name == b"transfer-encoding":
                chunked = True
            elif b"_" in name:
                underscored = True
        if underscored:
            headers = [(n, v) for n, v in headers if b"_" not in n]
            scope = {**scope, "headers": headers}
        if chunked:
            limit = conf.get("OBJECTS_MAX_BODY_BYTES")
            body, more = await receive_body(receive, limit)
            if more:
                response = error_response(413, f"The body is over the limit of {limit} bytes.")
                response["Connection"] = "close"
                await respond(send, self.finished(ASGIRequest(scope, io.BytesIO()), response))
                return
            length = (b"content-length", str(len(body)).encode())
            headers = [(n, v) for n, v in headers if n not in (b"transfer-encoding", b"content-length")] + [length]
            scope, receive = {**scope, "headers": headers}, replay(body, False, receive)
        await self.threaded(scope, receive, send)

    def takes(self, scope: Scope) -> bool:
        """A token call or send, or a token attach or output, the loop may answer (see the module docstring);
        decided from the scope alone."""
        if not self.on_loop or scope["query_string"] or scope.get("root_path"):
            return False
        path = scope.get("raw_path") or b""
        if not path.startswith(self.head):
            return False
        if scope["method"] != "POST" and (scope["method"] != "GET" or not path.endswith((b"/attach", b"/output"))):
            return False
        token = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = value[:5].lower() == b"token"
            elif (name == b"cookie" and self.session_cookie in value) or name == b"idempotency-key":
                return False
        return token

    async def answer(self, scope: Scope, body: bytes) -> HttpResponse:
        request = ASGIRequest(scope, io.BytesIO(body))
        refused = host_refused(request)
        if refused is not None:
            return self.finished(request, refused)
        view = IngressView()
        try:
            if self.security.process_request(request) is not None:  # an HTTPS redirect: Django answers it
                raise Threaded
            segments, encoded = raw_path(request, "")
            route = route_parse([decode_segment(s) for s in segments] if encoded else segments)
            if route.kind in ("health", "resolve", "reject") or route.method != request.method:
                raise Threaded
            try:
                found = TOKEN.authenticate(request)  # AuthenticationFailed (401)
            except SynchronousOnlyOperation:  # a token not cached yet: a call goes to the threads, an attach
                if route.method != "GET":  # looks it up in a thread it gives back before it waits
                    raise
                found = await asyncio.to_thread(_threaded, TOKEN.authenticate, request)
            if found is None:
                raise Threaded
            request.user, request.auth = found  # type: ignore[attr-defined]  # as DRF sets them
            over = self.rates.admit(scope, request.user)  # per client address and per user; no round trip here
            if over is not None:
                raise RateLimited(over)
            if route.method == "GET":
                response = await self.attach(view, request, route)
            else:
                asked = view.request_read(request, route)  # 404, 400, 403, 413 as the ingress answers them
                if asked.delay is not None:
                    raise Threaded
                principal = principal_json(request.user)  # who the invocation runs for (ctx.principal)
                if route.kind == "call" and asked.target.kind == "shared":
                    stored = validate_input(asked.target, asked.arg)
                    response = await self.shared(view, route, stored, Principal.from_json(principal))
                else:
                    response = await self.submit(
                        route.kind, route.type_name, route.key, route.handler, asked.target, asked.arg, principal
                    )
        except (Threaded, SynchronousOnlyOperation):
            raise Threaded from None
        except Exception as exc:  # noqa: BLE001 - answered as the ingress answers it
            response = view.handle_exception(exc)
        return self.finished(request, response)

    def finished(self, request: ASGIRequest, response: HttpResponse) -> HttpResponse:
        """The answer with the headers SecurityMiddleware and XFrameOptionsMiddleware give every answer."""
        response = self.xframe.process_response(request, self.security.process_response(request, response))
        response["Content-Length"] = str(len(response.content))
        return response

    async def submit(
        self, kind: str, type_name: str, key: str, handler: str, target: Any, arg: Any, principal: Any = None
    ) -> HttpResponse:
        """Insert the invocation (autocommit: committed when the statement returns), then ring (a send) or
        ring and wait (a call). `principal`: the signed-in user's `submit.principal_json`."""
        stored = validate_input(target, arg)
        connection = connections["default"]  # for preparing the values only: no statement runs on it here
        fields = {
            "type_name": type_name,
            "key": key,
            "handler": handler,
            "kind": target.kind,
            "partition": partition_of(type_name, key),
            "input": stored,
            "caller": None,
            "not_before": None,
            "principal": principal,
        }
        sql, params, chosen = fresh_statement(connection, fields, timezone.now())
        rung = chosen["partition"] if kind == "send" else None  # a send's partition is rung once it is inserted
        row = await self.group.insert(sql, params, chosen["uid"], rung)
        if row is None:  # a new key: the statement wrote nothing
            row = await self.first_of_key(sql, params, type_name, key, rung)
        if row is None:  # the new key's row was deleted again meanwhile: the threads make it
            raise Threaded
        chosen["id"], chosen["instance_id"] = row
        invocation = Invocation.built(connection.alias, chosen)
        if kind == "send":
            return send_response(invocation.public_id, created=True, execution_time=None)
        failure: Exception | None = None  # a timeout, or the database or Redis lost: answered with the id
        try:
            invocation = await wait_done(invocation, conf.get("OBJECTS_CALL_TIMEOUT"))
        except Exception as exc:  # noqa: BLE001 - outcome_response answers it
            failure = exc
            # the id is given out now: make the call's unflushed insert durable first (a flushed commit); a
            # failure here is the ingress's answer without the id (objects/api/errors.py)
            await self.postgres.fetchone(FLUSH_SQL, [invocation.pk])

        def output() -> Any:
            if failure is not None:
                raise failure
            return output_of(invocation)

        return outcome_response(invocation.public_id, output)

    async def first_of_key(
        self, sql: str, params: list[Any], type_name: str, key: str, send_partition: int | None
    ) -> Any:
        """A new key's first invocation: the key's row made (`store.sql.instance_create_statement`, nothing
        done when another request made it meanwhile), then the invocation inserted alone and, for a send,
        its partition rung. None when the key's row is gone again (an operator deleted it)."""
        await self.postgres.fetchone(*instance_create_statement(connections["default"], type_name, key))
        return await self.group.alone(sql, params, send_partition)

    async def shared(
        self, view: IngressView, route: Any, stored: Any, principal: Principal | None = None
    ) -> HttpResponse:
        """A shared call: the key's committed state read on the loop's connection (the statement of
        `state.committed_state`), the handler run on the loop (`IngressView.shared_response`). A handler that
        reads the database itself (or calls another object) raises SynchronousOnlyOperation here and the
        request goes to the threads; a shared handler writes nothing, so running it again there is safe."""
        rows = await self.postgres.fetchall(COMMITTED_SQL, [route.type_name, route.key])
        state = StateCache(*committed_from_rows(rows))
        return view.shared_response(
            route,
            lambda: run_shared(route.type_name, route.key, route.handler, stored, state=state, principal=principal),
        )

    async def attach(self, view: IngressView, request: ASGIRequest, route: Any) -> HttpResponse:
        """An attach or output: the invocation found and the caller's access checked in a thread
        (`IngressView.find`: the row, the type's access rule, the same answers), then the wait on the loop,
        holding no thread (`wait_done`, without a ring: the invocation's own doorbell rang when it was accepted).
        At most LOOP_WAITS attaches wait at once; beyond them 503."""
        invocation = await asyncio.to_thread(_threaded, view.find, request, route)
        failure: Exception | None = None  # a timeout, or the database or Redis lost: answered with the id
        if not invocation.is_done:
            if route.kind == "output":
                return not_ready(invocation)
            with self.waits.place():
                try:
                    invocation = await wait_done(invocation, conf.get("OBJECTS_CALL_TIMEOUT"), ring=False)
                except Exception as exc:  # noqa: BLE001 - outcome_response answers it
                    failure = exc

        def output() -> Any:
            if failure is not None:
                raise failure
            return output_of(invocation)

        return outcome_response(invocation.public_id, output)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def close(self) -> None:
        """Close the running loop's PostgreSQL and Redis connections (the rate counts' sending stopped first)."""
        self.watches.close()
        await self.rates.close()
        if self.on_loop:
            await self.postgres.close()
        await close_client()


def wrap(django_app: Any, *, threads: int | None = None) -> Application:
    """The host's ASGI application, in its asgi.py: `application = wrap(get_wsgi_application())`, imported
    after Django is set up. The threads run Django as WSGI, so Django's ASGI handler (`get_asgi_application()`)
    is taken too and replaced by Django's WSGI handler. `threads`: default OBJECTS_WEB_THREADS."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    if isinstance(django_app, ASGIHandler):
        django_app = WSGIHandler()
    return Application(django_app, threads=conf.get("OBJECTS_WEB_THREADS") if threads is None else threads)


def _threaded(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a thread of asyncio's pool: Django's database work of a request the loop answers."""
    close_old_connections()
    return function(*args)
