"""The shop's template context on every page: the header's cart (its count) and the cart's live-updates URL."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from cart.services import cart_key_existing

from . import selectors

log = logging.getLogger("shop")


def shop(request: HttpRequest) -> dict[str, Any]:
    """`cart` (read only when a page shows it and its view gave none, the sign-in page's included) and
    `cart_watch`: the URL of the cart's state as Server-Sent Events (docs/shop.md, "Live updates"), for a
    shopper who has a cart. Neither ever fails a page: a cart that cannot be read shows as empty."""
    try:
        key = cart_key_existing(request=request)
    except Exception:  # noqa: BLE001 - no session (an error page's broken request): no cart
        return {"cart": dict(selectors.EMPTY_CART), "cart_watch": ""}

    def cart() -> dict[str, Any]:
        try:
            return selectors.cart_get(key=key)
        except Exception:  # noqa: BLE001 - the header never breaks a page; the cart page says what is wrong
            log.warning("the header's cart %r could not be read", key, exc_info=True)
            return dict(selectors.EMPTY_CART)

    prefix = str(getattr(settings, "OBJECTS_INGRESS_PREFIX", "ingress")).strip("/")
    watch = f"/{prefix}/ShoppingCart/{quote(key, safe='')}/watch" if key else ""
    return {"cart": SimpleLazyObject(cart), "cart_watch": watch}
