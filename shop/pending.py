"""Calls of the shop's pages that a shopper waits for: at most SHOP_CALL_TIMEOUT seconds, then "still working".

A call that outlives the timeout goes on (it was accepted); the session remembers it under a random handle with
its idempotency key, and the pending page attaches to the same invocation again until its result is there.
A paused cart is refused at once ("on hold"), before anything is accepted. `shopper_message` turns any error
into words for a shopper: a handler's business refusal as it is, the framework's errors without ids or URLs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings

import objects
from orders import payments

SESSION_PENDING = "shop_pending"
MAX_PENDING = 10  # per session; older entries are forgotten (their invocations still run)
WAIT_SLICE = 0.25  # seconds between two looks at whether a call waits for something outside the shop
PENDING_FOR = 3600  # seconds a pending call is looked after (well within the idempotency retention)
RESUME_WAIT = 2.0  # seconds the pending page waits for the result before saying "still working" again
STILL_WORKING = "Still working on it… this page will show the result as soon as it is there."
ON_HOLD = (
    "Your cart is on hold for a moment while the shop looks after it; nothing was changed. "
    "Please try again in a few minutes."
)
ON_HOLD_WAITING = "Your cart is on hold for a moment; your change is kept and will be made as soon as it is released."
PAYING = (
    "Your order is waiting for its payment confirmation; your change is kept and will be made as soon as the "
    "payment is answered."
)
FAILED = "The shop could not finish that just now; nothing was changed. Please try again in a moment."
INVALID = "That request was not valid; reload the page and try again."


class Waiting(Exception):
    """The call is not finished: `handle` names it for the pending page ("" when nothing was accepted)."""

    def __init__(self, message: str, handle: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.handle = handle


def call_timeout() -> float:
    return float(getattr(settings, "SHOP_CALL_TIMEOUT", 5.0))


def cart_call(
    request: Any,
    *,
    key: str,
    handler: str,
    arg: Any,
    after: dict[str, Any],
    idempotency_key: str | None = None,
    principal: Any = None,
    waits_for: Callable[[], bool] | None = None,
) -> Any:
    """`ShoppingCart/<key>.<handler>(arg)` for a page, run for `principal`: its output, its error raised, or
    Waiting (paused key, or no result within the timeout; `after` is kept for the pending page to finish the
    answer). `waits_for`: true once the call waits for something outside the shop; the page stops waiting then."""
    if objects.instance_paused("ShoppingCart", key):
        raise Waiting(ON_HOLD)
    idempotency_key = idempotency_key or f"shop-{uuid.uuid4().hex}"
    deadline = time.monotonic() + call_timeout()
    while True:
        left = max(deadline - time.monotonic(), 0.01)
        try:
            return objects.call(
                "ShoppingCart",
                key,
                handler,
                arg,
                timeout=left if waits_for is None else min(left, WAIT_SLICE),
                idempotency_key=idempotency_key,
                principal=principal,
            )
        except objects.CallTimeout:
            if waits_for is None or time.monotonic() >= deadline or waits_for():
                break
    handle = uuid.uuid4().hex
    entries = _live(request.session.get(SESSION_PENDING) or {})
    entries[handle] = {"key": key, "handler": handler, "arg": arg, "idem": idempotency_key, "at": time.time(), **after}
    request.session[SESSION_PENDING] = dict(list(entries.items())[-MAX_PENDING:])
    raise Waiting(_still(key), handle)


def resume(request: Any, handle: str) -> tuple[dict[str, Any], Any, objects.ObjectsError | None] | None:
    """Wait a little for the pending call `handle`: (its `after`, output, None) or (after, None, error) once
    finished (and forgotten), Waiting while it runs, None when this session has no such call."""
    entries = _live(request.session.get(SESSION_PENDING) or {})
    entry = entries.get(handle)
    if entry is None:
        return None
    try:
        result = objects.call(
            "ShoppingCart",
            entry["key"],
            entry["handler"],
            entry["arg"],
            timeout=RESUME_WAIT,
            idempotency_key=entry["idem"],
            principal=request.user if entry["handler"] == "checkout" else None,
        )
        error = None
    except objects.CallTimeout:
        raise Waiting(_still(entry["key"]), handle) from None
    except objects.ObjectsError as exc:
        result, error = None, exc
    entries.pop(handle)
    request.session[SESSION_PENDING] = entries
    return entry, result, error


def shopper_message(exc: objects.ObjectsError) -> str:
    """What a shopper reads about a failed call: a handler's refusal (a TerminalError with a 4xx status) in its
    own words; anything else in general words, never an invocation id, a URL or a handler's name."""
    if isinstance(exc, objects.TerminalError) and 400 <= exc.status_code < 500:
        return exc.message
    if exc.status_code == 400:
        return INVALID
    return FAILED


def pending_kind(request: Any, handle: str) -> str | None:
    """What the pending call `handle` of this session finishes ("checkout", "cart"), None when there is none."""
    entry = _live(request.session.get(SESSION_PENDING) or {}).get(handle)
    return entry.get("then") if entry else None


def _still(key: str) -> str:
    if objects.instance_paused("ShoppingCart", key):
        return ON_HOLD_WAITING
    if payments.confirmation_on() and payments.payments_pending(user=key):
        return PAYING
    return STILL_WORKING


def _live(entries: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    return {h: e for h, e in entries.items() if isinstance(e, dict) and now - float(e.get("at", 0)) < PENDING_FOR}
