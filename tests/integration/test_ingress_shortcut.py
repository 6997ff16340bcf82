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


def dispatches(client: Client, method: str, path: str, body: bytes = b"", **extra) -> tuple[int, object]:
    """(how many times DRF's APIView.dispatch ran, the response)."""
    from rest_framework.views import APIView

    real = APIView.dispatch
    with mock.patch.object(APIView, "dispatch", autospec=True, side_effect=real) as spy:
        response = client.generic(method, path, data=body, content_type="application/json", **extra)
    return spy.call_count, response


def test_token_calls_and_sends_skip_drf_and_other_requests_take_it(token):
    calls, response = dispatches(Client(), "POST", "/ingress/ShortcutEcho/k5/whoami", **token)
    assert (calls, response.status_code) == (0, 200)
    calls, response = dispatches(Client(), "POST", "/ingress/ShortcutEcho/k5/whoami/send", **token)
    assert (calls, response.status_code) == (0, 202)
    for method, path, extra in [
        ("GET", "/ingress/restate/health", token),  # not a call
        ("GET", "/ingress/ShortcutEcho/k5/whoami", token),  # a call path, the wrong method: DRF's 405
        ("POST", "/ingress/ShortcutEcho/open/whoami", {}),  # no token: an anonymous caller
        ("POST", "/ingress/ShortcutEcho/k5/whoami", {"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}),
    ]:
        calls, response = dispatches(Client(), method, path, **extra)
        assert calls == 1, (method, path)


@pytest.mark.parametrize(
    ("path", "body", "header", "status"),
    [
        ("/ingress/ShortcutEcho/k6/whoami", b"", "Token {key}", 200),
        ("/ingress/ShortcutEcho/k6/whoami", b"", "Token nosuchtoken", 401),
        ("/ingress/ShortcutEcho/k6/whoami", b"", "Token", 401),
        ("/ingress/ShortcutEcho/k6/whoami", b"", "Token {key} extra", 401),
        ("/ingress/NoSuchType/k6/whoami", b"", "Token {key}", 404),
        ("/ingress/ShortcutEcho/k6/nope", b"", "Token {key}", 404),
        ("/ingress/ShortcutEcho/" + "k" * 300 + "/whoami", b"", "Token {key}", 400),
        ("/ingress/ShortcutEcho/k6/whoami", b"{not json", "Token {key}", 400),
        ("/ingress/ShortcutEcho/k6/whoami", b"[" + b"1," * 600_000 + b"1]", "Token {key}", 413),
        ("/ingress/ShortcutEcho/k6/whoami?delay=1s", b"", "Token {key}", 400),
        ("/ingress/ShortcutEcho/k6/whoami/send?delay=soon", b"", "Token {key}", 400),
        ("/ingress/ShortcutEcho/k6/whoami/extra/path", b"", "Token {key}", 400),
    ],
)
def test_the_token_path_answers_as_drf_does(token, path, body, header, status):
    """Each request answered by the token path and by the whole stack (a session cookie without a session:
    DRF's view, the same token): the same status, body and headers."""
    key = token["HTTP_AUTHORIZATION"].split()[1]
    extra = {"HTTP_AUTHORIZATION": header.format(key=key)}
    short_calls, short = dispatches(Client(), "POST", path, body, **extra)
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = "no-such-session"
    full_calls, full = dispatches(browser, "POST", path, body, **extra)
    assert (short_calls, full_calls) == (0, 1)
    assert short.status_code == full.status_code == status
    assert short.content == full.content
    names = (set(short.headers) | set(full.headers)) - {"x-restate-id"}  # a shared call's id is per call
    assert {n: short.get(n) for n in names} == {n: full.get(n) for n in names}
    assert short.has_header("x-restate-id") == full.has_header("x-restate-id") == (status == 200)
