"""The shop's session middleware: Django's, except that a stale session cookie is left alone.

Signing in gives the browser a new session and deletes the old one. A request the page sent before that (the
live cart's read, a second tab) can reach the server afterwards with the old cookie; Django's middleware then
finds no session and answers by deleting the browser's session cookie, which by now is the new one, so the
shopper is signed out again. Here a request that finds its session gone and did not change the session itself
leaves the cookie as it is; the request was served as anonymous, and signing out (which empties the session on
purpose) still deletes the cookie.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.utils.cache import patch_vary_headers


class SessionMiddleware(DjangoSessionMiddleware):
    def process_response(self, request: Any, response: Any) -> Any:
        session = getattr(request, "session", None)
        if (
            session is not None
            and settings.SESSION_COOKIE_NAME in request.COOKIES
            and session.accessed
            and not session.modified
            and session.is_empty()
        ):
            patch_vary_headers(response, ("Cookie",))
            return response
        return super().process_response(request, response)
