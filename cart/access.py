"""Who may call a ShoppingCart over HTTP: staff, the shopper owning the key, or the session owning an anon cart."""

from __future__ import annotations

from typing import Any

from .limits import ANON_PREFIX

# Server-side only: the sign-in merge and the idle expiry are never requested by shoppers.
STAFF_ONLY_HANDLERS = frozenset({"merge", "expire"})


def cart_access(user: Any, key: str, handler: str) -> bool:
    if getattr(user, "is_staff", False):
        return True
    if handler in STAFF_ONLY_HANDLERS:
        return False
    if getattr(user, "is_authenticated", False) and user.get_username() == key:
        return True
    session_key = getattr(user, "session_key", None)
    return bool(session_key) and key == f"{ANON_PREFIX}{session_key}"
