"""Security-suite fixtures: users of each kind with tokens, and a raw HTTP client that sends paths verbatim."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest


@dataclass
class Person:
    user: Any
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Token {self.token}"}

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def _person(username: str, **flags: Any) -> Person:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user(username, password="pw-" + username, **flags)
    return Person(user, Token.objects.create(user=user).key)


@pytest.fixture
def staff(db) -> Person:
    return _person("sec-staff", is_staff=True, is_superuser=True)


@pytest.fixture
def alice(db) -> Person:
    return _person("alice")


@pytest.fixture
def bob(db) -> Person:
    return _person("bob")


@pytest.fixture
def viewer(db) -> Person:
    """Staff with only the view permissions of the objects app: may look, may not change anything."""
    from django.contrib.auth.models import Permission

    person = _person("viewer", is_staff=True)
    person.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="objects", codename__startswith="view_")
    )
    return person


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawHTTP:
    """http.client sends the request target exactly as given (no normalization of `..`, no re-encoding)."""

    def __init__(self, base_url: str) -> None:
        parsed = urlparse(base_url)
        self.host, self.port = parsed.hostname, parsed.port

    def request(
        self, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> RawResponse:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            if body is not None:
                all_headers["Content-Length"] = str(len(body))
            for name, value in all_headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if body is not None:
                try:
                    conn.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered (413) and closed before reading it all; read that answer
            response = conn.getresponse()
            return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()


@pytest.fixture
def raw_http(live_web) -> RawHTTP:
    return RawHTTP(live_web.url)
