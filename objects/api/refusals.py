"""A handler's refusal: an invocation that failed with a 4xx TerminalError ("out of stock", 409) is its answer,
not a fault. Running it again gives the same answer, so neither the management API nor the admin retries it."""

from __future__ import annotations

from ..errors import Conflict
from ..models import Invocation, Status
from ..services import invocation_retry


def is_refusal(invocation: Invocation) -> bool:
    """Failed with a handler's 4xx: its answer rather than a fault."""
    code = invocation.error_code
    return invocation.status == Status.FAILED and code is not None and 400 <= code < 500


def retry_unless_refused(*, invocation: Invocation) -> Invocation:
    """An operator's retry (services.invocation_retry); a refusal is a Conflict (409) naming its answer."""
    if is_refusal(invocation):
        raise Conflict(
            f"Invocation {invocation.public_id} was not retried: its handler refused it ({invocation.error_code}: "
            f"{invocation.error_message[:200]}); running it again gives the same answer."
        )
    return invocation_retry(invocation=invocation)
