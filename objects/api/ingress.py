"""The Restate-compatible ingress: calls, sends, attach/output, awakeables and health, under OBJECTS_INGRESS_PREFIX.

One catch-all view: the path is re-parsed from the undecoded request path (see paths.py). Checks run in
a fixed order: authentication (401) -> type and handler exist (404) -> key (400) -> the type's access
rule (403) -> delay and input (400/413) -> the invocation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ..client import result_of
from ..context import Principal
from ..errors import CallTimeout, Conflict, InvalidInput, NotFound, ObjectsError, TerminalError
from ..models import Invocation
from ..registry import get_object
from ..runtime.run import run_shared
from ..runtime.submit import resolve
from ..services import awakeable_complete, awakeable_find, invocation_get, invocation_submit
from ..validation import validate_input, validate_key
from ..watch import WATCH_ALLOWED, WATCH_SCOPE
from .authentication import CachedTokenAuthentication
from .body import body_read, json_parse
from .delay import delay_parse
from .errors import error_answer, unavailable
from .limits import ingress_admit, ingress_count, thread_wait
from .paths import Route, decode_segment, raw_path, route_parse
from .permissions import INGRESS_AUTHENTICATION_CLASSES, access_check, anonymous_refused
from .responses import NOT_READY, error_response, http_status, output_response, send_response

log = logging.getLogger("objects.api")


def idempotency_key_check(value: str) -> None:
    if not 1 <= len(value) <= 255 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput("The idempotency key must be 1 to 255 characters without control characters.")


class MethodNotAllowed(exceptions.MethodNotAllowed):
    def __init__(self, method: str, allowed: str) -> None:
        super().__init__(method, detail=f"Method {method} is not allowed on this path; use {allowed}.")
        self.allowed = allowed


@dataclass(frozen=True)
class Asked:
    """What a call or send asks for, checked: its handler, its argument, its delay and idempotency key."""

    target: Any
    arg: Any
    delay: Any
    idempotency_key: str | None


def not_ready(invocation: Invocation) -> HttpResponse:
    """The answer to `output` before the invocation has finished."""
    return error_response(
        NOT_READY, "The invocation exists but has not completed yet.", invocation_id=invocation.public_id
    )


def outcome_response(public_id: str, output: Callable[[], Any]) -> HttpResponse:
    """The answer to a call: `output()`'s value, or its error in Restate's shape (a timeout, the handler's
    terminal error, an operator's cancel or kill)."""
    try:
        value = output()
    except CallTimeout as exc:
        return error_response(exc.status_code, exc.message, invocation_id=public_id)
    except TerminalError as exc:
        return error_response(http_status(exc.status_code), exc.message, source="invocation", invocation_id=public_id)
    except Conflict as exc:  # cancelled or killed by an operator
        return error_response(409, exc.message, source="invocation", invocation_id=public_id)
    except SynchronousOnlyOperation:  # on the event loop: the threads answer (asgi.py)
        raise
    except Exception as exc:  # noqa: BLE001 - the database or Redis lost during the wait, or a bug
        return error_answer(exc, invocation_id=public_id)
    return output_response(value, public_id)


TOKEN = CachedTokenAuthentication()


def token_ingress(request, rest: str) -> HttpResponse | None:
    """A token call or send (POST with `Authorization: Token ...`, no session cookie), answered without DRF's
    request wrapping and dispatch: the same checks in the same order, the same errors (handle_exception),
    a plain Django request whose user is the token's. None for everything else (health, attach, output,
    other methods or schemes), which IngressView answers. Called by objects.middleware.IngressShortcutMiddleware:
    a tenth of the web process's CPU per call in the benchmark profile was DRF around this view."""
    if request.method != "POST" or request.META.get("HTTP_AUTHORIZATION", "")[:5].lower() != "token":
        return None
    view = IngressView()
    try:
        segments, encoded = raw_path(request, rest)
        route = route_parse([decode_segment(s) for s in segments] if encoded else segments)
        if route.kind not in ("call", "send") or route.method != "POST":
            return None
        try:
            found = TOKEN.authenticate(request)  # raises AuthenticationFailed (401) for a bad token
        except exceptions.AuthenticationFailed:
            ingress_count(request, None)  # a bad token counts against its address (429 over its limit)
            raise
        if found is None:  # another scheme that starts with the same letters
            return None
        request.user, request.auth = found
        ingress_count(request, request.user)  # 429 per client address and per user
        return view.invoke(request, route)
    except Exception as exc:  # noqa: BLE001 - answered as IngressView answers it
        return view.handle_exception(exc)


class IngressView(APIView):
    """Every ingress path; see the module docstring and docs/api.md."""

    authentication_classes = INGRESS_AUTHENTICATION_CLASSES
    permission_classes: list = []  # the type's access rule decides, after the type is known
    parser_classes: list = []  # the body is read raw (body.py), not by DRF's parsers
    renderer_classes = [JSONRenderer]
    schema = None  # openapi.py describes the ingress per registered handler instead

    @property
    def default_response_headers(self) -> dict[str, str]:
        return {}  # DRF's default Allow lists every method; ours names the one a path takes (on 405)

    def perform_authentication(self, request) -> None:
        """Lazy: `request.user` is evaluated when a route needs it, so /restate/health needs no credentials."""

    def perform_content_negotiation(self, request, force: bool = False) -> tuple[Any, str]:
        return JSONRenderer(), "application/json"  # responses are JSON whatever the Accept header says

    def http_method_not_allowed(self, request, *args: Any, **kwargs: Any) -> Any:
        return self.ingress(request, **kwargs)

    get = post = put = patch = delete = head = options = http_method_not_allowed  # type: ignore[assignment]

    def ingress(self, request, rest: str = "") -> HttpResponse:
        segments, encoded = raw_path(request, rest)
        route = route_parse([decode_segment(s) for s in segments] if encoded else segments)
        if route.kind == "call" and route.handler == "watch" and request.method == "GET":
            return self.watch(request, route)
        allowed = {route.method, "HEAD"} if route.method == "GET" else {route.method}
        if request.method not in allowed:
            raise MethodNotAllowed(request.method, route.method)
        if route.kind == "health":
            return HttpResponse(b'{"status":"ok"}', content_type="application/json")
        ingress_admit(request)  # 429 per client address and per user (a 401 first for credentials that fail)
        if route.kind in ("call", "send"):
            return self.invoke(request, route)
        if route.kind in ("resolve", "reject"):
            return self.awakeable(request, route)
        return self.attach(request, route)

    # -- calls and sends ---------------------------------------------------------------------------
    def invoke(self, request, route: Route) -> HttpResponse:
        asked = self.request_read(request, route)
        principal = Principal.of(request.user)  # who the invocation runs for (ctx.principal)
        if route.kind == "call" and asked.target.kind == "shared" and asked.idempotency_key is None:
            return self.call_shared(route, validate_input(asked.target, asked.arg), principal)
        delay = asked.delay
        waits = route.kind == "call"  # a call rings its doorbell with its first wait: one Redis round trip
        invocation, created = invocation_submit(
            type_name=route.type_name,
            key=route.key,
            handler=route.handler,
            arg=asked.arg,
            idempotency_key=asked.idempotency_key,
            delay=delay,
            principal=principal,
            ring=not waits,
        )
        if route.kind == "send":
            execution_time = invocation.not_before if delay else None
            return send_response(invocation.public_id, created=created, execution_time=execution_time)
        return self.outcome(invocation, ring=waits and created)

    def request_read(self, request, route: Route) -> Asked:
        """A call's or send's checks in their order (credentials and a session's CSRF token, authorize, delay, body,
        idempotency key) and what it asks."""
        request.user  # noqa: B018 - authentication first: a session without its CSRF token is refused here (403)
        obj = self.authorize(request, route.type_name, route.key, route.handler, writes=route.kind == "send")
        target = obj.handlers[route.handler]
        delay_text = request.GET.get("delay")
        if route.kind == "call" and delay_text is not None:
            raise InvalidInput("Cannot use the delay query parameter with a call; send with .../send?delay=...")
        delay = delay_parse(delay_text) if delay_text is not None else None
        arg = json_parse(body_read(request))
        # META, not request.headers: that builds a mapping of every header on first use, for one lookup
        idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        if idempotency_key is not None:
            idempotency_key_check(idempotency_key)
        return Asked(target, arg, delay, idempotency_key)

    def call_shared(self, route: Route, stored: Any, principal: Principal | None = None) -> HttpResponse:
        """A shared handler without an idempotency key runs here, on committed state, without a row."""
        return self.shared_response(
            route, lambda: run_shared(route.type_name, route.key, route.handler, stored, principal=principal)
        )

    def shared_response(self, route: Route, output: Callable[[], Any]) -> HttpResponse:
        """The answer of a shared call: `output()` (the handler run), or its failure as the invocation's 500."""
        ephemeral_id = f"inv_{uuid.uuid4().hex}"
        try:
            value = output()
        except (ObjectsError, SynchronousOnlyOperation):  # the last: on the event loop (asgi.py)
            raise
        except Exception as exc:  # noqa: BLE001 - a handler bug is the invocation's failure, not the ingress'
            if unavailable(exc) is not None:  # the database or Redis lost: the ingress's 503
                raise
            log.exception("shared handler %s.%s failed", route.type_name, route.handler)
            return error_response(
                500, f"Handler {route.type_name}.{route.handler} raised {type(exc).__name__}.", source="invocation"
            )
        return output_response(value, ephemeral_id)

    # -- watch --------------------------------------------------------------------------------------
    def watch(self, request, route: Route) -> HttpResponse:
        """`GET {Type}/{key}/watch`: checked here, then streamed on the event loop, which asks this first and
        streams on the 204 it gets (objects/watch.py). Staff who may view instances (`objects.view_instance`, what
        the admin's instance page needs) watch any key of any type, as the admin shows it; everyone else as a call
        of the type's (first) shared handler is checked. Served without the loop (a WSGI server), the answer is
        501: a stream would hold a thread for its whole life."""

        ingress_admit(request)
        user = request.user
        if user.is_authenticated and user.is_staff and user.has_perm("objects.view_instance"):
            validate_key(route.key)  # an operator's view: the type's rule and handlers do not apply
        else:
            obj = get_object(route.type_name)
            shared = next((name for name, h in obj.handlers.items() if h.kind == "shared"), None) if obj else None
            self.authorize(request, route.type_name, route.key, shared or route.handler)
        scope = request.META.get("asgi.scope")
        if not (isinstance(scope, dict) and scope.get(WATCH_SCOPE)):
            return error_response(
                501, "Watching needs the ASGI web server (uvicorn serving config.asgi, as `make run` starts it)."
            )
        response = HttpResponse(status=204)
        response[WATCH_ALLOWED] = "1"
        return response

    # -- awakeables ---------------------------------------------------------------------------------
    def awakeable(self, request, route: Route) -> HttpResponse:
        """Resolve (a JSON body, the value) or reject (a text body, the reason) an awakeable: 202 with no body, as
        Restate answers. For a signed-in caller whose access to the waiting invocation's key lets it call the
        invocation's (exclusive) handler; one who may not is answered as for an unknown id (404)."""
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated("Sign in to resolve or reject awakeables.")
        found = awakeable_find(route.awakeable_id)  # 400 malformed, 404 unknown
        waiter = found.invocation
        try:
            self.authorize(request, waiter.type_name, waiter.key, waiter.handler, known=False, writes=True)
        except (NotFound, exceptions.PermissionDenied):
            raise NotFound(f"No awakeable {route.awakeable_id!r}.") from None
        body = body_read(request)
        if route.kind == "resolve":
            awakeable_complete(awakeable_id=route.awakeable_id, value=json_parse(body))
        else:
            try:
                reason = body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("The reason must be UTF-8 text.") from None
            awakeable_complete(awakeable_id=route.awakeable_id, value=reason, rejected=True)
        return HttpResponse(status=202)

    # -- attach and output --------------------------------------------------------------------------
    def attach(self, request, route: Route) -> HttpResponse:
        """Attach (wait for the invocation, then answer like its call) or output (answer at once). A wait takes
        one of the threads' few attach places (objects/api/limits.py): 503 when none is free. Token requests
        are answered on the event loop instead, where a wait holds no thread (objects/asgi.py)."""
        invocation = self.find(request, route)
        if invocation.is_done:
            return self.outcome(invocation)
        if route.kind == "output":
            return not_ready(invocation)
        with thread_wait():
            return self.outcome(invocation)

    def find(self, request, route: Route) -> Invocation:
        """The invocation an attach or output names, for a caller with the access its target needs (the type's
        rule for its key and handler). By id, an invocation the caller may not see is answered as an unknown
        one: 401 without credentials, otherwise 404, with the same message."""
        if route.invocation_id:
            anonymous = exceptions.NotAuthenticated("Sign in to attach to invocations.")
            try:
                invocation = invocation_get(route.invocation_id)
            except NotFound:
                if not request.user.is_authenticated:
                    raise anonymous from None
                raise
            try:
                self.authorize(request, invocation.type_name, invocation.key, invocation.handler, known=False)
            except (NotFound, exceptions.NotAuthenticated, exceptions.PermissionDenied):
                if not request.user.is_authenticated:
                    raise anonymous from None
                raise NotFound(f"No invocation {route.invocation_id!r}.") from None  # invocation_get's words
            return invocation
        self.authorize(request, route.type_name, route.key, route.handler)
        idempotency_key_check(route.idempotency_key)
        found = Invocation.objects.filter(
            type_name=route.type_name, key=route.key, handler=route.handler, idempotency_key=route.idempotency_key
        ).first()
        if found is None:
            raise NotFound(
                f"No invocation of {route.type_name}/{route.key} {route.handler} with idempotency key "
                f"{route.idempotency_key!r}."
            )
        return found

    def outcome(self, invocation: Invocation, ring: bool = False) -> HttpResponse:
        """Wait for the invocation and answer like the original call would."""
        return outcome_response(invocation.public_id, lambda: result_of(invocation, ring=ring))

    # -- checks -------------------------------------------------------------------------------------
    def authorize(
        self, request, type_name: str, key: str, handler: str, *, known: bool = True, writes: bool = False
    ) -> Any:
        """401 -> 404 -> 400 (key) -> 403, in that order; returns the object type. `writes`: a send."""
        obj = get_object(type_name)
        if writes and not request.user.is_authenticated:
            raise exceptions.NotAuthenticated(
                f"Sign in to send to {type_name}: a send (delayed or not) needs a signed-in caller."
            )
        if anonymous_refused(obj, request, key, handler):
            raise exceptions.NotAuthenticated(
                f"Authentication credentials were not provided; {type_name} needs a signed-in user."
            )
        if known or obj is not None:
            resolve(type_name, handler)
        validate_key(key)
        if obj is None:  # an invocation of a type removed since: staff who may view instances only
            if not (request.user.is_staff and request.user.has_perm("objects.view_instance")):
                raise exceptions.PermissionDenied("Only staff may see invocations of removed object types.")
            return None
        access_check(obj, request, key, handler, writes=writes)
        return obj

    # -- errors -------------------------------------------------------------------------------------
    def handle_exception(self, exc: Exception) -> Any:
        return error_answer(exc)
