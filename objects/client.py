"""Calling objects from ordinary Django code (views, tasks, the shell, tests): `call` and `send`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection

from . import conf
from .context import Principal
from .errors import Conflict, DeadlockError, TerminalError
from .models import Status
from .runtime.run import current_chain, run_shared
from .runtime.submit import resolve
from .services import invocation_submit
from .signals.doorbell import wait_done
from .validation import validate_input, validate_key


def call(
    type_name: str,
    key: str,
    handler: str,
    arg: Any = None,
    *,
    timeout: float | None = None,
    idempotency_key: str | None = None,
    principal: Any = None,
) -> Any:
    """Run a handler and wait for its output. Raises the handler's TerminalError, or CallTimeout.

    Shared handlers run here, on the last committed state; exclusive ones are accepted as a row and run
    by a worker. Not for use inside a handler: use `ctx.call` there. `principal` (a user or an
    `objects.Principal`) is who the handler runs for (`ctx.principal`); None by default.
    """
    if current_chain():
        raise TerminalError("objects.call() inside a handler would wait on itself; use ctx.call(...) instead.", 500)
    target = resolve(type_name, handler)
    if target.kind == "exclusive" and connection.in_atomic_block:
        raise TerminalError(
            "objects.call() inside a database transaction would wait for an invocation that is not "
            "committed yet; call it outside transaction.atomic(), or use objects.send().",
            500,
        )
    if target.kind == "shared" and idempotency_key is None:
        who = Principal.of(principal)
        validate_key(key)
        return run_shared(type_name, key, handler, validate_input(target, arg), principal=who)
    invocation, created = invocation_submit(  # rings with the first wait: one Redis round trip for both
        type_name=type_name,
        key=key,
        handler=handler,
        arg=arg,
        idempotency_key=idempotency_key,
        principal=principal,
        ring=False,
    )
    return result_of(invocation, timeout=timeout, ring=created)


def result_of(invocation: Any, *, timeout: float | None = None, ring: bool = False) -> Any:
    """Wait for an accepted invocation and return its output, or raise its error. `ring`: the invocation
    was submitted with `ring=False`, and its doorbell rings with the first wait."""
    if not invocation.is_done:
        limit = conf.get("OBJECTS_CALL_TIMEOUT") if timeout is None else timeout
        invocation = wait_done(invocation, limit, ring=ring)
    return output_of(invocation)


def output_of(invocation: Any) -> Any:
    """A waited-for invocation's output, or its error raised (Conflict when it is not finished, or was
    cancelled or killed)."""
    if invocation.status == Status.SUCCEEDED:
        return invocation.output
    if invocation.status == Status.FAILED:
        if invocation.error_type == "DeadlockError":
            raise DeadlockError(invocation.error_message)
        raise TerminalError(invocation.error_message, invocation.error_code or 500)
    raise Conflict(f"Invocation {invocation.public_id} was {invocation.status}.")


def send(
    type_name: str,
    key: str,
    handler: str,
    arg: Any = None,
    *,
    delay: timedelta | None = None,
    idempotency_key: str | None = None,
    principal: Any = None,
) -> str:
    """Accept a one-way invocation and return its id at once (after it is committed). `principal`: as for
    `call`."""
    invocation, _ = invocation_submit(
        type_name=type_name,
        key=key,
        handler=handler,
        arg=arg,
        delay=delay,
        idempotency_key=idempotency_key,
        principal=principal,
    )
    return invocation.public_id
