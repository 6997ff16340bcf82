"""The web process's application (served by uvicorn): token calls and sends on the event loop, every other
request by Django's WSGI handler on a pool of threads.

Why: a token call spent most of the web process's CPU outside its own work, in a threaded server's request
handling and in threads taking turns at the interpreter (docs/dev/benchmark-history.md, "Ninth round"; the decision:
docs/decisions/0006-web-server.md). On the event loop a call costs its checks, one `INSERT` and one Redis
round trip, and a waiting call holds no thread.

What the loop answers itself: a POST to `/{OBJECTS_INGRESS_PREFIX}/{Type}/{key}/{handler}` or `.../send`
with an `Authorization: Token ...` header, without a session cookie, a query string or an `Idempotency-Key`
header, on PostgreSQL. Its checks are the ingress's own, in the same order with the same answers
(objects/api/ingress.py: `token_ingress`, `IngressView.request_read`, `handle_exception`), run on the loop
because they read no database: the token from the process's cache (objects/api/authentication.py), the
type's access rule, the key, the body. Then the invocation's `INSERT` on one of the loop's own PostgreSQL
connections (the statement of `services.invocation_insert_fresh`; under load, the invocations that arrive
while the previous statement runs are inserted by one statement and one commit, `GroupInsert`), and, for a
call, the ring and the wait for the done signal on the loop's Redis connections (the commands of
`notify.wait_done`). A call to a shared
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
made (`runtime.instance_create_statement`), and the invocation is inserted alone. The rare steps of a call's
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
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
import redis
import redis.asyncio as aredis
from a2wsgi import WSGIMiddleware
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import InterfaceError, OperationalError, close_old_connections, connections
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
from .doorbell import PARTITION_BELL_TTL, RING_MARK, bell_keys, publish_drain, ring_partition, ring_script
from .middleware import host_refused
from .models import DONE_STATUSES, Invocation
from .notify import SIGNAL_TTL, apply_outcome, call_timeout, done_key, fresh_invocation
from .ratelimit import LoopCounts
from .routing import partition_of
from .runtime import run_shared
from .state import COMMITTED_SQL, StateCache, committed_from_rows
from .submit import fresh_group_sql, fresh_statement, instance_create_statement, principal_json
from .timeouts import redis_options
from .validation import validate_input
from .watch import Watches

log = logging.getLogger("objects.asgi")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Threaded(Exception):  # noqa: N818 - a decision, not an error
    """The request goes to the threads: the loop cannot answer it alone (nothing was written)."""


class Application:
    """The ASGI application: `config.asgi.application`."""

    def __init__(self, wsgi_app: Callable[..., Any], *, threads: int) -> None:
        self.threaded: Any = WSGIMiddleware(_with_raw_uri(wsgi_app), workers=threads)  # typed with its own scopes
        self.head = ("/" + conf.get("OBJECTS_INGRESS_PREFIX").strip("/") + "/").encode()
        self.session_cookie = settings.SESSION_COOKIE_NAME.encode() + b"="
        self.on_loop = connections["default"].vendor == "postgresql"
        self.postgres = Postgres()
        self.group = GroupInsert(self.postgres)
        self.waits = LoopWaits()
        self.rates = LoopCounts(pipelined)
        self.security = SecurityMiddleware(_unused)
        self.xframe = XFrameOptionsMiddleware(_unused)
        self.watches = Watches(self, _client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and self.takes(scope):
            body, more = await _body(receive, conf.get("OBJECTS_MAX_BODY_BYTES"))
            try:
                response = await self.answer(scope, body)
            except Threaded:
                await self.to_threads(scope, _replay(body, more, receive), send)
                return
            if more:  # the rest of the body stays unread: closing stops uvicorn from reading it to drop it
                response["Connection"] = "close"
            await _respond(send, response)
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
            body, more = await _body(receive, limit)
            if more:
                response = error_response(413, f"The body is over the limit of {limit} bytes.")
                response["Connection"] = "close"
                await _respond(send, self.finished(ASGIRequest(scope, io.BytesIO()), response))
                return
            length = (b"content-length", str(len(body)).encode())
            headers = [(n, v) for n, v in headers if n not in (b"transfer-encoding", b"content-length")] + [length]
            scope, receive = {**scope, "headers": headers}, _replay(body, False, receive)
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
        ring and wait (a call). `principal`: the signed-in user's `services.principal_json`."""
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
        """A new key's first invocation: the key's row made (`runtime.instance_create_statement`, nothing
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
        await self.postgres.close()
        client = _redis.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def wrap(django_app: Any, *, threads: int | None = None) -> Application:
    """The host's ASGI application, in its asgi.py: `application = wrap(get_wsgi_application())`, imported
    after Django is set up. The threads run Django as WSGI, so Django's ASGI handler (`get_asgi_application()`)
    is taken too and replaced by Django's WSGI handler. `threads`: default OBJECTS_WEB_THREADS."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    if isinstance(django_app, ASGIHandler):
        django_app = WSGIHandler()
    return Application(django_app, threads=conf.get("OBJECTS_WEB_THREADS") if threads is None else threads)


class Postgres:
    """The loop's PostgreSQL connections: a bounded pool (psycopg_pool) of at most OBJECTS_WEB_DB_POOL_SIZE,
    opened as needed, taken and given back per statement. A statement waits up to OBJECTS_WEB_DB_POOL_TIMEOUT
    for a connection, then raises PoolBusy (the ingress's 503 with Retry-After), so a burst of requests
    queues instead of taking PostgreSQL's connection slots from the workers. Each connection is in autocommit,
    named `objects-web-loop` in pg_stat_activity, and keeps one cursor, whose statements psycopg prepares after
    DATABASE_PREPARE_THRESHOLD runs as on Django's connections. A connection whose statement failed is closed
    (the pool opens another). The pool belongs to the event loop that opened it (one per process under
    uvicorn)."""

    APPLICATION_NAME = "objects-web-loop"

    def __init__(self) -> None:
        self.pool: psycopg_pool.AsyncConnectionPool[_LoopConnection] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def fetchone(self, sql: str, params: list[Any], *, flush: bool = True) -> Any:
        return await self._run(sql, params, one=True, flush=flush)

    async def fetchall(self, sql: str, params: list[Any], *, flush: bool = True) -> list[Any]:
        return await self._run(sql, params, one=False, flush=flush)

    async def _run(self, sql: str, params: list[Any], *, one: bool, flush: bool = True) -> Any:
        """Run one statement on a pooled connection. Without `flush`, its commit does not wait for the WAL to
        reach the disk (`synchronous_commit` off for the connection until a flushed statement needs it on):
        only for a call's invocation, whose answer waits for a worker's later commit, which is flushed and so
        makes everything before it in the WAL durable too (docs/decisions/0007)."""
        pool = await self._pool()
        for spare in range(pool.max_size, -1, -1):
            try:
                conn = await pool.getconn()
            except psycopg_pool.PoolTimeout as exc:
                if pool.get_stats().get("pool_size", 0) < pool.max_size:  # it could not connect: the database is down
                    raise
                raise PoolBusy(pool.max_size, pool.timeout) from exc
            try:
                if time.monotonic() - conn.used > IDLE_CHECK_AFTER and not await _answers(conn):
                    continue  # ended while it sat idle (a restart, a cut network): closed, try another
                if conn.flush is not flush:
                    await conn.kept.execute("SET synchronous_commit TO " + ("DEFAULT" if flush else "OFF"))
                    conn.flush = flush
                await conn.kept.execute(sql, params)
                return await (conn.kept.fetchone() if one else conn.kept.fetchall())
            except psycopg.OperationalError as exc:
                await conn.close()
                if exc.sqlstate not in ENDED_BY_SERVER or not spare:
                    raise
                # The server ended this idle connection (a restart) before the statement ran: the pool's other
                # idle connections likely went with it, and each found so is closed; the statement goes on another.
            except BaseException:
                await conn.close()
                raise
            finally:
                conn.used = time.monotonic()
                await pool.putconn(conn)
        raise psycopg.OperationalError("every connection of the loop's pool was ended by the server")

    async def _pool(self) -> psycopg_pool.AsyncConnectionPool[_LoopConnection]:
        loop = asyncio.get_running_loop()
        if self.pool is None or self.loop is not loop:  # another loop's pool is not usable here
            params = connections["default"].get_connection_params()  # Django's: its adapters, prepare threshold
            params.pop("cursor_factory", None)  # Django's is a synchronous cursor class
            self.pool = psycopg_pool.AsyncConnectionPool(
                connection_class=_LoopConnection,
                kwargs={**params, "autocommit": True, "application_name": loop_name()},
                min_size=0,
                max_size=conf.get("OBJECTS_WEB_DB_POOL_SIZE"),
                timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),
                reconnect_timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),  # then a later request tries again
                configure=_keep_cursor,
                name=self.APPLICATION_NAME,
                open=False,
            )
            self.loop = loop
            await self.pool.open()
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None and self.loop is asyncio.get_running_loop():
            await pool.close(timeout=1)


# A statement that writes WAL (a row lock) and so, with synchronous_commit on, commits only once the WAL up to
# it is on disk: every earlier commit is durable when it returns. FOR KEY SHARE never waits for a worker that
# runs the invocation (its update takes a weaker lock).
FLUSH_SQL = 'SELECT 1 FROM "objects_invocation" WHERE id = %s FOR KEY SHARE'

# SQLSTATEs of a session the server ended while it sat idle (shutdown, crash, a terminated backend): a statement
# sent on it afterwards never ran, so running it on another connection cannot apply it twice.
ENDED_BY_SERVER = {"57P01", "57P02", "57P05"}


def loop_name() -> str:
    """The name of the loop's connections in pg_stat_activity and Redis' CLIENT LIST: `objects-web-loop`, or
    `<application_name>-loop` when the database settings name the web process's connections."""
    named = connections["default"].get_connection_params().get("application_name")
    return f"{named}-loop" if named else Postgres.APPLICATION_NAME


class _LoopConnection(psycopg.AsyncConnection[Any]):
    kept: psycopg.AsyncCursor[Any]  # the connection's one cursor (`_keep_cursor`)
    used: float = 0.0  # time.monotonic() when it last ran a statement
    flush: bool = True  # whether its commits wait for the WAL flush (synchronous_commit as configured)


async def _keep_cursor(conn: _LoopConnection) -> None:
    conn.kept = conn.cursor()
    conn.used = time.monotonic()


IDLE_CHECK_AFTER = 2.0  # seconds: a connection idle longer answers a SELECT 1 before it is given a statement


async def _answers(conn: _LoopConnection) -> bool:
    """Whether an idle connection still answers; one that does not is closed. A process in steady use never
    pays for this: only a connection left idle for IDLE_CHECK_AFTER is asked."""
    try:
        await conn.kept.execute("SELECT 1")
        await conn.kept.fetchone()
    except psycopg.Error:
        await conn.close()
        return False
    return True


class PoolBusy(psycopg.OperationalError):
    """No connection of the loop's pool came free within its timeout: nothing was sent to the database."""

    wait = 1  # seconds: the Retry-After of its 503 (objects/api/errors.py)

    def __init__(self, size: int, timeout: float) -> None:
        super().__init__(
            f"All {size} of this web process's database connections stayed busy for {timeout:g} s; retry shortly."
        )


class GroupInsert:
    """The loop's invocation `INSERT`s, grouped: the invocations that arrive while the loop's previous statement
    runs go into the next one together (`services.fresh_group_sql`, one statement and one commit for the
    group), so under load a statement and a commit are paid per group, not per invocation, and with one
    request at a time nothing waits (a group of one runs `fresh_statement`'s own statement). The sends of a
    group ring their partitions once, after the commit, in one Redis round trip. Each request still gets its
    answer only once its invocation is committed.

    The statements run in a task of their own, so a request that goes away does not cancel its group's. A group
    whose statement PostgreSQL refused (nothing was written) is inserted again one by one, so each request
    gets its own answer; a lost connection (the statement may have committed) is each request's error, as
    for one invocation alone."""

    LIMIT = 100  # invocations per statement

    def __init__(self, postgres: Postgres) -> None:
        self.postgres = postgres
        self.waiting: list[_Entry] = []
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def insert(self, sql: str, params: list[Any], uid: Any, send_partition: int | None) -> Any:
        """The invocation inserted with its group: (id, instance id), or None when its key has no row (nothing
        written). `sql` and `params` are `fresh_statement`'s; `send_partition` is rung after the commit."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # another loop's group is not this one's
            self.waiting, self.task, self.loop = [], None, loop
        entry = _Entry(sql, params, uid, send_partition, loop.create_future())
        self.waiting.append(entry)
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        row = await entry.future
        return await self.alone(sql, params, send_partition) if row is _ALONE else row

    async def alone(self, sql: str, params: list[Any], send_partition: int | None) -> Any:
        """One invocation inserted by its own statement (and its partition rung, for a send)."""
        row = await self.postgres.fetchone(sql, params)
        if row is not None and send_partition is not None:
            await ring([send_partition])
        return row

    async def _run(self) -> None:
        while self.waiting:
            group, self.waiting = self.waiting[: self.LIMIT], self.waiting[self.LIMIT :]
            try:
                await self._group(group)
            except BaseException as exc:  # noqa: BLE001 - each waiting request gets it
                for entry in group:
                    if not entry.future.done():
                        entry.future.set_exception(exc if isinstance(exc, Exception) else psycopg.OperationalError())
                if not isinstance(exc, Exception):
                    raise

    async def _group(self, group: list[_Entry]) -> None:
        flush = any(entry.send_partition is not None for entry in group)  # only calls: see Postgres._run
        if len(group) == 1:
            (entry,) = group
            row = await self.postgres.fetchone(entry.sql, entry.params, flush=flush)
            rows = {entry.uid: row} if row is not None else {}
        else:
            columns = [list(column) for column in zip(*(entry.params[:-2] for entry in group), strict=True)]
            try:
                found = await self.postgres.fetchall(fresh_group_sql(), columns, flush=flush)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:  # refused as a whole, nothing written: each again, alone
                log.warning("ingress: a group of %d refused, inserted one by one: %s", len(group), exc)
                for entry in group:
                    _settle(entry, _ALONE)
                return
            rows = {uid: (pk, instance_id) for pk, instance_id, uid in found}
        for entry in group:  # calls first: they ring with their wait
            if entry.send_partition is None:
                _settle(entry, rows.get(entry.uid))
        partitions = sorted({e.send_partition for e in group if e.send_partition is not None and e.uid in rows})
        if partitions:
            await ring(partitions)
        for entry in group:
            if entry.send_partition is not None:
                _settle(entry, rows.get(entry.uid))


@dataclass(slots=True)
class _Entry:
    sql: str
    params: list[Any]
    uid: Any
    send_partition: int | None
    future: asyncio.Future[Any]


_ALONE = object()  # a group's answer to its entries: insert yourself, alone


def _settle(entry: _Entry, result: Any) -> None:
    if not entry.future.done():  # its request may have gone away
        entry.future.set_result(result)


# -- Redis: the commands of doorbell.wait_done and doorbell.ring_partition, on the loop --------------------------
_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()


def _client() -> aredis.Redis:
    """The running loop's Redis client (its connections belong to that loop): at most OBJECTS_WEB_REDIS_POOL_SIZE
    connections; a round trip beyond them waits for one (up to OBJECTS_WEB_DB_POOL_TIMEOUT, then a ConnectionError,
    which a call's wait treats as Redis being unreachable: it reads the database instead)."""
    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        pool = aredis.BlockingConnectionPool.from_url(
            conf.redis_url(),
            max_connections=conf.get("OBJECTS_WEB_REDIS_POOL_SIZE"),
            timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),
            **redis_options(),  # keepalives and timeouts within OBJECTS_HOST_LOSS_BOUND, as every Redis client
            client_name=loop_name(),  # CLIENT LIST tells the loop's connections apart
        )
        client = _redis[loop] = aredis.Redis.from_pool(pool)
    return client


async def pipelined(commands: list[tuple[Any, ...]]) -> list[Any]:
    """`notify.pipelined` on the loop: the commands in one packet, every reply read, raw; an error reply raised
    once all are read; a broken connection dropped and the round trip sent once more on another."""
    try:
        return await _round_trip(commands)
    except redis.ConnectionError:
        return await _round_trip(commands)


async def _round_trip(commands: list[tuple[Any, ...]]) -> list[Any]:
    pool = _client().connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        error: redis.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
                error = error or exc
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    if error is not None:
        raise error
    return replies


async def ring(partitions: list[int]) -> None:
    """`doorbell.ring_partition` on the loop, for each partition, in one round trip: count the ring; the first
    since the partition's last drain publishes one (Celery, in a thread). Never raises: the sweeper covers a
    lost doorbell."""
    sha = ring_script().sha
    try:
        counts = await pipelined([("EVALSHA", sha, 3, *bell_keys(p), PARTITION_BELL_TTL) for p in partitions])
    except redis.exceptions.NoScriptError:  # Redis restarted: the synchronous ring loads the script again
        for partition in partitions:
            await asyncio.to_thread(ring_partition, partition)
        return
    except Exception:  # noqa: BLE001 - Redis down: publish anyway (a duplicate drain is harmless)
        counts = [1] * len(partitions)
    for partition, count in zip(partitions, counts, strict=True):
        if int(count) == 1:
            await asyncio.to_thread(publish_drain, partition)


async def ring_and_wait(partition: int, key: str, timeout: float) -> Any:
    """`doorbell.ring_and_wait` on the loop: ring the partition and BLPOP the call's done list in one round trip."""
    bell = ("EVALSHA", ring_script().sha, 4, *bell_keys(partition), key, PARTITION_BELL_TTL, RING_MARK, SIGNAL_TTL)
    try:
        return (await pipelined([bell, ("BLPOP", key, timeout)]))[1]
    except redis.exceptions.NoScriptError:
        pass
    except redis.RedisError:
        await asyncio.to_thread(ring_partition, partition)
        raise
    await asyncio.to_thread(ring_partition, partition)
    return None


async def wait_done(invocation: Invocation, timeout: float, *, ring: bool = True) -> Invocation:
    """`notify.wait_done` on the loop: wait for the done signal, and with `ring` (a call whose doorbell has not
    rung yet) ring with the first wait; raise CallTimeout after `timeout` seconds (the invocation goes on)."""
    deadline = time.monotonic() + timeout
    key = done_key(invocation.public_id)
    first = ring
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if first:  # never waited: ring before giving up
                await asyncio.to_thread(ring_partition, invocation.partition)
            raise call_timeout(invocation.public_id, timeout)
        try:
            if first:
                first = False
                signal = await ring_and_wait(invocation.partition, key, min(remaining, 1.0))
            else:
                signal = (await pipelined([("BLPOP", key, min(remaining, 1.0))]))[0]
        except redis.RedisError:
            signal = None
            await asyncio.sleep(min(remaining, 0.25))
        if signal is not None and signal[1] in (RING_MARK, RING_MARK.encode()):
            await asyncio.to_thread(publish_drain, invocation.partition)  # no drain of the partition: start one
            continue
        if signal is not None and apply_outcome(invocation, signal[1]):
            return invocation
        try:
            fresh = await asyncio.to_thread(_fresh, invocation.pk)
        except (OperationalError, InterfaceError) as exc:  # the database is restarting: keep waiting
            log.warning("waiting for %s: database unavailable, retrying: %s", invocation.public_id, exc)
            await asyncio.sleep(min(max(deadline - time.monotonic(), 0), 0.5))
            continue
        if fresh is None or fresh.status in DONE_STATUSES:
            return fresh or invocation


def _fresh(pk: int) -> Invocation | None:
    close_old_connections()  # this thread's connection may have expired or broken since its last use
    return fresh_invocation(pk)


def _threaded(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a thread of asyncio's pool: Django's database work of a request the loop answers."""
    close_old_connections()
    return function(*args)


# -- plumbing -------------------------------------------------------------------------------------------
def _unused(request: Any) -> HttpResponse:
    raise AssertionError("only the middleware's process_request and process_response are used")


async def _body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, up to one byte over `limit` (the ingress refuses it with 413); True when more is
    left unread."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if not more or size > limit:
            return b"".join(chunks), more


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A `receive` that gives the body read so far again, then the rest from the client."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed


async def _respond(send: Send, response: HttpResponse) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def _with_raw_uri(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app with RAW_URI set from the ASGI scope's undecoded path, as gunicorn sets it: the ingress
    splits a key's `%2F` from the raw path (objects/api/paths.py)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        scope = environ.get("asgi.scope")
        raw = scope.get("raw_path") if isinstance(scope, dict) else None
        if raw and "RAW_URI" not in environ:
            query = environ.get("QUERY_STRING")
            environ["RAW_URI"] = raw.decode("latin-1") + (f"?{query}" if query else "")
        return app(environ, start_response)

    return wsgi
