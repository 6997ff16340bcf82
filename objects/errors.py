"""The error vocabulary: what a handler or a caller may raise or catch, each with an HTTP status."""

from __future__ import annotations


class ObjectsError(Exception):
    """Base of the errors a caller of the framework may see. `status_code` maps it to HTTP."""

    status_code = 500
    source = "ingress"

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class TerminalError(ObjectsError):
    """Fails an invocation at once, without retry; its state writes are discarded.

    Raise it from a handler for a business refusal (`TerminalError("out of stock", 409)`).
    """

    source = "invocation"

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(message, status_code)


class DeadlockError(TerminalError):
    """A request-response call would wait on a key its own call chain holds exclusively."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409)


class NotFound(ObjectsError):
    """Unknown object type, handler or invocation."""

    status_code = 404


class InvalidInput(ObjectsError):
    """The key or the input fails validation; nothing was accepted."""

    status_code = 400


class PayloadTooLarge(ObjectsError):
    """A body or a state entry is over its configured limit."""

    status_code = 413


class Conflict(ObjectsError):
    """An idempotency key reused for another request, a stale version, or a refused transition."""

    status_code = 409


class SharedWriteError(TerminalError):
    """A shared handler tried to write state; shared handlers are read-only."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 500)


class CallTimeout(ObjectsError):
    """`objects.call` waited longer than its timeout; the invocation goes on."""

    status_code = 504

    def __init__(self, message: str, invocation_id: str) -> None:
        super().__init__(message)
        self.invocation_id = invocation_id


class Unavailable(ObjectsError):
    """The database or Redis is unreachable; retry later."""

    status_code = 503


class _ControlFlow(BaseException):
    """Internal signals. BaseException so that a handler's `except Exception` cannot swallow them."""


class InvocationKilled(_ControlFlow):
    """An operator killed the running invocation: discard its effects."""


class Suspended(_ControlFlow):
    """The handler waits for something not complete yet (`ctx.sleep`, an awakeable): its attempt is rolled
    back and the invocation suspended until `until` (a sleep) or until its awakeable is completed."""

    def __init__(self, *, until: object = None, awakeable: str | None = None) -> None:
        super().__init__("suspended")
        self.until = until
        self.awakeable = awakeable
