"""Signal receivers of the cart: merge the anonymous cart into the shopper's cart at sign-in."""

from __future__ import annotations

from typing import Any

from .services import cart_merge_on_login


def merge_anonymous_cart(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None:
        cart_merge_on_login(request=request, user=user)
