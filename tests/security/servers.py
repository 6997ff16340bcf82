"""A web server of its own for a test module (the production command with some settings changed in its
environment), and plain HTTP requests with a timeout, each on its own connection."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tests.support import WebServer, _test_database_url


@contextlib.contextmanager
def server_with(django_db_blocker, **env: str) -> Iterator[WebServer]:
    """The production web server on the test database, started with `env` set, in two processes: what the edge
    enforces must hold whichever process a request reaches."""
    with django_db_blocker.unblock():
        url = _test_database_url()
    server = WebServer(url, workers=2)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        server.start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(
    base_url: str,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 60.0,
) -> Answer:
    """One request on a connection of its own; raises TimeoutError when no answer comes within `timeout`."""
    parsed = urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()
