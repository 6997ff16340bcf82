"""Database backends, and the hot path's way to the current connection.

`db()` is this thread's default connection, looked up once. `django.db.connection` is a proxy that looks the
connection up in a thread-and-context local on every attribute access (about 1.7 microseconds each); the
ingress's INSERT and the worker's statements touched it more than a hundred times per call (each field
preparing its value asks it for `ops` and `features`), 7 % of the web process's CPU on one-way sends. A
function on the hot path binds `connection = db()` once and uses that.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def db() -> Any:
    """The default database connection of this thread (and async context), as `django.db.connection` is."""
    return connections[DEFAULT_DB_ALIAS]
