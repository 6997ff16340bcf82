"""ASGI plumbing of objects/asgi.py: the request body read and given again, a Django response sent, RAW_URI
for the threads' WSGI handler, the loop's connections' name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.db import connections
from django.http import HttpResponse

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def unused(request: Any) -> HttpResponse:
    raise AssertionError("only the middleware's process_request and process_response are used")


async def receive_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
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


def replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A `receive` that gives the body read so far again, then the rest from the client."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed


async def respond(send: Send, response: HttpResponse) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def with_raw_uri(app: Callable[..., Any]) -> Callable[..., Any]:
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


LOOP_NAME = "objects-web-loop"


def loop_name() -> str:
    """The name of the loop's connections in pg_stat_activity and Redis' CLIENT LIST: `objects-web-loop`, or
    `<application_name>-loop` when the database settings name the web process's connections."""
    named = connections["default"].get_connection_params().get("application_name")
    return f"{named}-loop" if named else LOOP_NAME
