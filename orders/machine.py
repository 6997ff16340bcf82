"""The order state machine as data: which action leads from which states to which state."""

from __future__ import annotations

from objects import TerminalError

CREATED, PAID, SHIPPED, DELIVERED, CANCELLED = "created", "paid", "shipped", "delivered", "cancelled"

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pay": ((CREATED,), PAID),
    "ship": ((PAID,), SHIPPED),
    "deliver": ((SHIPPED,), DELIVERED),
    "cancel": ((CREATED, PAID), CANCELLED),
}


def allowed_actions(status: str) -> list[str]:
    return [action for action, (sources, _) in TRANSITIONS.items() if status in sources]


def transition_target(*, order_id: str, status: str, action: str) -> str:
    """The state `action` leads to from `status`, or a 409 listing what is allowed from `status`."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        allowed = allowed_actions(status)
        listed = ", ".join(allowed) if allowed else "nothing (it is a final state)"
        raise TerminalError(f"Cannot {action} order {order_id}: it is {status}. Allowed from {status}: {listed}.", 409)
    return target
