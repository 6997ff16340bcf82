"""Ingress paths: split the undecoded request path into segments and percent-decode each one ourselves.

WSGI's PATH_INFO (and so Django's request.path) is already percent-decoded, which would turn a key's
`%2F` into a path separator. Like Restate, we split the raw path on `/` first and decode each segment
after, so a key may hold `/`, spaces, `%`, `?` or any Unicode when the client percent-encodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .. import conf
from ..errors import InvalidInput

BAD_PATH = (
    "Bad path: expected /{prefix}/{Type}/{key}/{handler}, /{prefix}/{Type}/{key}/{handler}/send, "
    "/{prefix}/restate/invocation/{id}/attach|output, "
    "/{prefix}/restate/invocation/{Type}/{key}/{handler}/{idempotencyKey}/attach|output, "
    "/{prefix}/restate/awakeables/{id}/resolve|reject or /{prefix}/restate/health."
)


@dataclass(frozen=True)
class Route:
    """What an ingress path asks for: `kind` is call, send, attach, output, health, resolve or reject (an
    awakeable)."""

    kind: str
    type_name: str = ""
    key: str = ""
    handler: str = ""
    invocation_id: str = ""
    idempotency_key: str = ""
    awakeable_id: str = ""

    @property
    def method(self) -> str:
        return "POST" if self.kind in ("call", "send", "resolve", "reject") else "GET"


def raw_path(request, fallback: str) -> tuple[list[str], bool]:
    """The request path below the ingress prefix, as raw segments; True when they are still percent-encoded."""

    meta = request.META
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    scope = getattr(request, "scope", None)
    if not raw and isinstance(scope, dict) and scope.get("raw_path"):
        raw = scope["raw_path"].decode("latin-1")
    if raw:
        raw = raw.split("?", 1)[0].split("#", 1)[0]
        if "://" in raw:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        script = meta.get("SCRIPT_NAME", "").rstrip("/")
        head = f"{script}/{conf.get('OBJECTS_INGRESS_PREFIX').strip('/')}/"
        if raw.startswith(head):
            return raw[len(head) :].split("/"), True
    return fallback.split("/"), False


def decode_segment(segment: str) -> str:
    """Percent-decode one raw segment to UTF-8 (`+` stays a plus); invalid UTF-8 is a 400."""
    try:
        data = segment.encode("latin-1")
    except UnicodeEncodeError:  # already text beyond Latin-1 (a test client, or an ASGI server)
        data = segment.encode("utf-8")
    try:
        return unquote_to_bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("Bad path: a segment is not valid UTF-8 after percent-decoding.") from None


def route_parse(segments: list[str]) -> Route:
    """Map decoded segments to a Route, or raise InvalidInput (400) for a path of no known shape."""
    n = len(segments)
    if segments and segments[0] == "restate":
        if n == 2 and segments[1] == "health":
            return Route("health")
        if n == 4 and segments[1] in ("awakeables", "a") and segments[3] in ("resolve", "reject"):
            return Route(segments[3], awakeable_id=segments[2])
        if n >= 4 and segments[1] == "invocation" and segments[-1] in ("attach", "output"):
            if n == 4:
                return Route(segments[-1], invocation_id=segments[2])
            if n == 7:
                type_name, key, handler, idem = segments[2:6]
                return Route(segments[-1], type_name=type_name, key=key, handler=handler, idempotency_key=idem)
            if n == 6:
                raise InvalidInput(
                    "Bad path: every object type is keyed; use "
                    "/restate/invocation/{Type}/{key}/{handler}/{idempotencyKey}/attach|output."
                )
        raise InvalidInput(f"Bad path: this server does not implement /restate/{'/'.join(segments[1:2])}. {BAD_PATH}")
    if n == 3:
        return Route("call", type_name=segments[0], key=segments[1], handler=segments[2])
    if n == 4 and segments[3] == "send":
        return Route("send", type_name=segments[0], key=segments[1], handler=segments[2])
    if n == 2:
        # Restate's client drops an empty key: /{Type}/{handler}. Objects always need one (400 with the rule).
        return Route("call", type_name=segments[0], key="", handler=segments[1])
    raise InvalidInput(BAD_PATH)
