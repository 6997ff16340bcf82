"""Token authentication with a short per-process cache: the ingress's hot path reads no token row per call.

DRF's `TokenAuthentication` runs one `SELECT` of the token and its user on every request (about a sixth of
the web process's CPU per call in the benchmark profile). `CachedTokenAuthentication` keeps the answer
for `OBJECTS_TOKEN_CACHE_SECONDS` (default 5; 0 turns the cache off) in the process that looked it up.

What that changes: a token deleted, or a user deactivated, in this process stops working at once (the
signals below empty the cache); in other web processes it keeps working for at most that many seconds.
Every request gets its own copy of the user, so nothing set on `request.user` leaks between requests.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import TokenAuthentication

from .. import conf

_MAX_ENTRIES = 10_000
_lock = threading.Lock()
_cache: dict[str, tuple[float, Any, Any]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        ttl = float(conf.get("OBJECTS_TOKEN_CACHE_SECONDS"))
        if ttl <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return copy.copy(hit[1]), hit[2]
        user, token = super().authenticate_credentials(key)  # raises AuthenticationFailed for a bad token
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, user, token)
        return copy.copy(user), token


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
