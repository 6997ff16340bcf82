"""Helpers for testing objects with pytest without a worker: a key's inbox run in the test's own process.

A test that uses them needs the database's transactions really committed (`transactional_db`, or
`@pytest.mark.django_db(transaction=True)`) and a Redis, as `objects.send` does; SQLite is enough.
"""

from __future__ import annotations

from typing import Any

from .client import call, output_of, send
from .runtime.submit import resolve
from .services import invocation_get
from .worker.inbox import drain_key


def run_inbox(type_name: str, key: str) -> int:
    """Run the key's pending invocations here, in order, as a worker would; how many ran. A key whose row
    another transaction holds, or whose head backs off, is left as it is (0)."""
    ran, _ = drain_key(type_name, key)
    return ran


def call_here(type_name: str, key: str, handler: str, arg: Any = None) -> Any:
    """Run a handler and return its output, or raise its error (a TerminalError; a 400 for bad input, before
    anything is stored). A shared handler runs at once on the committed state; an exclusive one is accepted,
    then the key's inbox runs here (`run_inbox`)."""
    if resolve(type_name, handler).kind == "shared":
        return call(type_name, key, handler, arg)
    invocation_id = send(type_name, key, handler, arg)
    run_inbox(type_name, key)
    return output_of(invocation_get(invocation_id))
