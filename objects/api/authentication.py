"""Token authentication with a short per-process cache: the ingress's hot path reads no token row per call.

DRF's `TokenAuthentication` runs one `SELECT` of the token and its user on every request.
`CachedTokenAuthentication` keeps the answer
for `OBJECTS_TOKEN_CACHE_SECONDS` (default 5; 0 turns the cache off) in the process that looked it up.

What that changes: a token deleted, or a user deactivated, in this process stops working at once (the
signals below empty the cache); in other web processes it keeps working for at most that many seconds.
Every request gets its own copy of the user, so nothing set on `request.user` leaks between requests.

`authenticate` reads the Authorization header from `request.META` (DRF's reads `request.headers`, which
builds a mapping of every header for that one lookup) and answers exactly as DRF's does, the same errors for
the same malformed headers; it works on DRF's request and on a plain Django request (the ingress's token path).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.base import ModelState
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext as _
from rest_framework import HTTP_HEADER_ENCODING, exceptions
from rest_framework.authentication import TokenAuthentication

from .. import conf

_MAX_ENTRIES = 10_000
_lock = threading.Lock()
_cache: dict[str, tuple[float, Any, Any]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        auth = request.META.get("HTTP_AUTHORIZATION", "").encode(HTTP_HEADER_ENCODING).split()
        if not auth or auth[0].lower() != b"token":
            return None
        if len(auth) == 1:
            raise exceptions.AuthenticationFailed(_("Invalid token header. No credentials provided."))
        if len(auth) > 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header. Token string should not contain spaces."))
        try:
            token = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header. Token string should not contain invalid characters.")
            ) from None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        ttl = float(conf.get("OBJECTS_TOKEN_CACHE_SECONDS"))
        if ttl <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return user_copy(hit[1]), hit[2]
        user, token = super().authenticate_credentials(key)  # raises AuthenticationFailed for a bad token
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, user, token)
        return user_copy(user), token


def user_copy(user: Any) -> Any:
    """A shallow copy of a cached user as `copy.copy` makes it (its own attributes, its own model state and
    cache of related objects), without going through pickling's protocol."""
    clone = object.__new__(type(user))
    clone.__dict__.update(user.__dict__)
    state = clone._state = ModelState()
    state.db, state.adding = user._state.db, user._state.adding
    state.fields_cache = dict(user._state.fields_cache)
    return clone


def cache_clear(**_: Any) -> None:
    with _lock:
        _cache.clear()


def _connect_signals() -> None:
    from rest_framework.authtoken.models import Token

    post_delete.connect(cache_clear, sender=Token, dispatch_uid="objects.token_cache.token_deleted")
    post_save.connect(cache_clear, sender=Token, dispatch_uid="objects.token_cache.token_saved")
    user_model = get_user_model()
    post_save.connect(cache_clear, sender=user_model, dispatch_uid="objects.token_cache.user_saved")
    post_delete.connect(cache_clear, sender=user_model, dispatch_uid="objects.token_cache.user_deleted")


_connect_signals()
