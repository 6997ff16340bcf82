"""Services around the cart for Django code: which cart a request uses, and the sign-in merge."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

import objects

from .limits import ANON_PREFIX

log = logging.getLogger("cart")
SESSION_ANON_CART = "anon_cart_key"


def cart_key_existing(*, request: Any) -> str | None:
    """The cart key of this request, or None for a visitor who has no cart yet."""
    if request.user.is_authenticated:
        return request.user.get_username()
    return request.session.get(SESSION_ANON_CART)


def cart_key_for(*, request: Any) -> str:
    """The cart key of this request: the username, or "anon:<session key>" for a visitor (made on first use).

    The anonymous key is remembered in the session, because Django changes the session key at sign-in
    and the merge must still find the visitor's cart then.
    """
    existing = cart_key_existing(request=request)
    if existing:
        return existing
    if not request.session.session_key:
        request.session.save()
    key = f"{ANON_PREFIX}{request.session.session_key}"
    request.session[SESSION_ANON_CART] = key
    return key


def cart_merge_on_login(*, request: Any, user: Any) -> None:
    """Merge the visitor's anonymous cart into `user`'s cart; never makes the sign-in fail."""
    session = getattr(request, "session", None)
    source = session.pop(SESSION_ANON_CART, None) if session is not None else None
    if not source:
        return
    arg = {"from": source}
    try:
        if connection.in_atomic_block:  # objects.call would wait on an uncommitted row
            objects.send("ShoppingCart", user.get_username(), "merge", arg)
        else:
            objects.call("ShoppingCart", user.get_username(), "merge", arg, timeout=10)
    except Exception:  # noqa: BLE001 - a failed merge must not block signing in; it is logged
        log.exception("merging cart %s into %s failed", source, user.get_username())
