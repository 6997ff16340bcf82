"""IngressShortcutMiddleware: ingress requests without a session cookie skip the URL resolver and the
middleware after the shortcut, and answer exactly as the whole stack would (objects/middleware.py)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls.resolvers import URLResolver
from rest_framework.authtoken.models import Token

from objects import SharedObjectContext, VirtualObject
from objects.registry import unregister

pytestmark = pytest.mark.django_db

HEADERS = (
    "Content-Type",
    "Content-Length",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
)


@pytest.fixture(autouse=True)
def echo():
    obj = VirtualObject("ShortcutEcho", access=lambda user, key, handler: user.is_authenticated or key == "open")

    @obj.shared
    def whoami(ctx: SharedObjectContext) -> str:
        return ctx.key

    yield obj
    unregister("ShortcutEcho")


@pytest.fixture
def token():
    user = User.objects.create_user("shortcut", password="pw")
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def resolves(client: Client, path: str, **extra) -> tuple[int, object]:
    """(how many times the URL resolver ran, the response) for one POST."""
    real = URLResolver.resolve
    with mock.patch.object(URLResolver, "resolve", autospec=True, side_effect=real) as spy:
        response = client.post(path, data=b"", content_type="application/json", **extra)
    return spy.call_count, response


def test_a_token_call_skips_the_resolver_and_answers_with_every_header(token):
    calls, response = resolves(Client(), "/ingress/ShortcutEcho/k1/whoami", **token)
    assert (response.status_code, json.loads(response.content)) == (200, "k1")
    assert calls == 0
    for name in HEADERS:
        assert response.has_header(name), name
    assert int(response["Content-Length"]) == len(response.content)
    assert response["X-Frame-Options"] == "DENY"


def test_the_shortcut_answers_as_the_whole_stack(token):
    """The same call with and without a session cookie (a cookie with no session behind it: still the
    token's user) gets the same status, body and headers; only the cookie's request is resolved."""
    short_calls, short = resolves(Client(), "/ingress/ShortcutEcho/k2/whoami", **token)
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = "no-such-session"
    full_calls, full = resolves(browser, "/ingress/ShortcutEcho/k2/whoami", **token)
    assert short_calls == 0 < full_calls
    assert (short.status_code, short.content) == (full.status_code, full.content)
    assert {name: short.get(name) for name in HEADERS} == {name: full.get(name) for name in HEADERS}


@pytest.mark.parametrize(
    ("path", "signed_in", "status", "message"),
    [
        ("/ingress/ShortcutEcho/k3/whoami", False, 401, "Authentication credentials were not provided"),
        ("/ingress/NoSuchType/k3/whoami", True, 404, "NoSuchType"),
        ("/ingress/ShortcutEcho/k3/nope", True, 404, "nope"),
        ("/ingress/ShortcutEcho/k3", True, 404, "has no handler"),
    ],
)
def test_errors_are_the_ingress_errors_on_the_shortcut(token, path, signed_in, status, message):
    calls, response = resolves(Client(), path, **(token if signed_in else {}))
    assert calls == 0
    assert response.status_code == status
    assert message in json.loads(response.content)["message"]
    assert response["X-Frame-Options"] == "DENY"


def test_other_paths_and_session_requests_take_the_whole_stack(token):
    calls, response = resolves(Client(), "/ingressx/ShortcutEcho/k4/whoami", **token)
    assert calls > 0 and response.status_code == 404
    user = User.objects.create_user("browser", password="pw")
    browser = Client()
    browser.force_login(user)
    calls, response = resolves(browser, "/ingress/ShortcutEcho/k4/whoami")
    # the session's user is known only to the whole stack (AuthenticationMiddleware); CSRF checks are off
    # in the test client, so the call goes through
    assert calls > 0 and (response.status_code, json.loads(response.content)) == (200, "k4")
