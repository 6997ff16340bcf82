"""Who may do what: the per-type access rule on the ingress, and staff-only for the management API.

An access rule is `VirtualObject(..., access=rule)`, called as `rule(user, key, handler) -> bool`. The
`user` is the request's user (an AnonymousUser without credentials) and carries `user.session_key`: the
request's session key, or None. Rules for anonymous, per-session keys (`anon:<session key>`) read it with
`getattr(user, "session_key", None)`. The session key is only given when the request passes the CSRF
check (a cookie alone, sent by another site's form, proves nothing).

Staff act on keys through a rule's `user.is_staff` only with the Django permission the request needs
(`rule_user`): `objects.view_instance` for a call to a shared handler (and reading an invocation's outcome),
`objects.change_instance` for an exclusive handler and for any send. A staff user without it is given to the
rule as a non-staff user (their own keys stay theirs), on both web paths.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import SynchronousOnlyOperation
from django.http import QueryDict
from rest_framework import exceptions, permissions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from ..registry import VirtualObject
from .authentication import CachedTokenAuthentication

log = logging.getLogger("objects.api")
AUTHENTICATION_CLASSES = [CachedTokenAuthentication, SessionAuthentication]  # Token first: its 401 names a scheme


class _WithoutForm:
    """A request as the CSRF check sees it on the ingress: everything but the form, which is empty."""

    POST = QueryDict()

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def csrf_check(request: Any) -> None:
    """Django's CSRF check of an unsafe request, with the token from the `X-CSRFToken` header (the ingress's
    bodies are JSON, never forms): PermissionDenied (403) when it fails. The body is not read: DRF's own check
    reads the form through the view's parsers, which the ingress has none of (a 415 for every JSON body)."""
    SessionAuthentication().enforce_csrf(_WithoutForm(getattr(request, "_request", request)))  # type: ignore[arg-type]


class IngressSessionAuthentication(SessionAuthentication):
    """Session authentication for the ingress: a signed-in browser's unsafe request needs the CSRF token in the
    `X-CSRFToken` header (403 without it, before the path's type, handler, key or body is looked at)."""

    def enforce_csrf(self, request: Any) -> None:
        csrf_check(request)


INGRESS_AUTHENTICATION_CLASSES = [CachedTokenAuthentication, IngressSessionAuthentication]


class IsStaff(permissions.IsAdminUser):
    """Staff only; a request without credentials gets 401, a signed-in non-staff user 403.

    Reading needs staff; changing (any unsafe method) also needs the Django "change" permission of the
    view's model (`objects.change_instance`, `objects.change_invocation`), as in the admin: view-only
    staff can inspect but not edit, clear, pause, cancel, kill or retry.
    """

    message = "The management API is for staff users only."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        queryset = getattr(view, "queryset", None)
        if queryset is None:
            return True
        meta = queryset.model._meta
        if request.user.has_perm(f"{meta.app_label}.change_{meta.model_name}"):
            return True
        raise exceptions.PermissionDenied(
            f"Changing {meta.verbose_name_plural} needs the '{meta.app_label}.change_{meta.model_name}' "
            "permission; this account can only view."
        )


def session_key_for(request) -> str | None:
    """The request's session key, withheld from a cookie-only unsafe request that fails the CSRF check."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return key
    if isinstance(request.successful_authenticator, TokenAuthentication):
        return key
    try:
        csrf_check(request)
    except exceptions.PermissionDenied:
        return None
    return key


def rule_allows(obj: VirtualObject, user: Any, key: str, handler: str) -> bool:
    """Apply the type's rule; a rule that raises refuses (and is logged): access fails closed."""
    try:
        return bool(obj.access(user, key, handler))
    except SynchronousOnlyOperation:  # a rule that reads the database, run on the event loop (objects/asgi.py)
        raise
    except Exception:  # noqa: BLE001 - a broken rule must not become a 500 or an open door
        log.exception("access rule of %s raised for key %r, handler %r; refusing", obj.name, key, handler)
        return False


def anonymous_refused(obj: VirtualObject | None, request, key: str, handler: str) -> bool:
    """True when the caller has no credentials and the type's rule does not let an anonymous caller in."""
    if request.user.is_authenticated:
        return False
    if obj is None:
        return True  # an anonymous caller learns nothing about which types exist
    anonymous = AnonymousUser()
    anonymous.session_key = session_key_for(request)  # type: ignore[attr-defined]
    return not rule_allows(obj, anonymous, key, handler)


def staff_permission(obj: VirtualObject, handler: str, *, writes: bool) -> str:
    """The Django permission a staff user needs to act as staff: `writes` (a send, or an exclusive handler
    called) needs objects.change_instance, reading objects.view_instance."""
    target = obj.handlers.get(handler)
    if writes or target is None or target.kind == "exclusive":
        return "objects.change_instance"
    return "objects.view_instance"


def rule_user(user: Any, permission: str) -> Any:
    """The user an access rule is given: a staff user without `permission` as a copy that is not staff (nor
    superuser), so every rule's `user.is_staff` means "staff allowed to do this". Checking the permission
    reads the database for staff who are not superusers (on the event loop that sends the request to the
    threads); other users are given as they are."""
    if not getattr(user, "is_staff", False) or user.has_perm(permission):
        return user
    seen = copy.copy(user)
    seen.is_staff = seen.is_superuser = False
    return seen


def access_check(obj: VirtualObject, request, key: str, handler: str, *, writes: bool = False) -> None:
    """Raise NotAuthenticated (401) or PermissionDenied (403, with a message) when the rule refuses; `writes`:
    the request makes an invocation row even for a shared handler (a send)."""
    user = request.user
    user.session_key = session_key_for(request)
    if rule_allows(obj, rule_user(user, staff_permission(obj, handler, writes=writes)), key, handler):
        return
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated(f"Sign in to call {obj.name}/{key} {handler}.")
    raise exceptions.PermissionDenied(f"{user.get_username()} may not call {obj.name}.{handler} on key {key!r}.")
