"""Crash counting: how many times each invocation was started, in Redis, so that one that keeps ending its worker
process (OBJECTS_CRASH_LIMIT) is failed instead of started forever. The counts are written without waiting for
Redis's replies; see `StartCounts`.
"""

from __future__ import annotations

from typing import Any

from . import notify
from .keys import START_PREFIX

START_TTL = 24 * 3600


def start_key(public_id: str) -> str:
    return f"{START_PREFIX}{public_id}"


class StartCounts:
    """The crash limit's start counts of one drain's invocations (a group pass, or a key's batch), without a
    Redis round trip per start.

    The counts they already have are asked for with one `MGET` once the drain has read its inboxes; its reply is
    read at the first start, so Redis answers while the drain decodes the keys' state. Each start is then counted
    by writing `INCR` and `EXPIRE` (and the `DEL` of the previous handler's count) to the same connection, the
    drain's own, without waiting for the replies, which are read when the drain has run its keys (`close`). The
    command is in the socket before the handler runs, so a process that dies in the handler leaves the start
    counted: the kernel delivers what was written. Redis unreachable: no counts, no crash protection for the drain.
    """

    def __init__(self, public_ids: list[str]) -> None:
        self.known: dict[str, int] = {}
        self.connection: Any = None
        self.unread = 0
        self._asked: list[str] = []  # whose counts were asked for, the reply not read yet
        if not public_ids:
            return
        try:
            self.pool = notify.client().connection_pool
            self.connection = self.pool.get_connection()
        except Exception:  # noqa: BLE001 - Redis down: run unprotected rather than not at all
            self.connection = None
            return
        if self._send([("MGET", *[start_key(public_id) for public_id in public_ids])]):
            self._asked = public_ids

    def count(self, public_id: str, previous: str | None) -> int:
        """Count a start of `public_id` (and forget `previous`, the last handler's count); the starts so far."""
        self._read_known()
        if self.connection is None:
            return 0
        key = start_key(public_id)
        commands: list[tuple[Any, ...]] = [("DEL", previous)] if previous else []
        commands += [("INCR", key), ("EXPIRE", key, START_TTL)]
        if not self._send(commands):
            return 0
        self.known[public_id] = self.known.get(public_id, 0) + 1
        return self.known[public_id]

    def _read_known(self) -> None:
        """Read the counts asked for when the drain began: their reply has come while it read its inboxes' state."""
        asked, self._asked = self._asked, []
        if not asked or self.connection is None:
            return
        try:
            values = self.connection.read_response()
        except Exception:  # noqa: BLE001 - the connection broke: the drain goes on unprotected
            self._drop()
            return
        self.unread -= 1
        self.known = {p: int(v) for p, v in zip(asked, values, strict=True) if v is not None}

    def forget(self, key: str) -> None:
        self._send([("DEL", key)])

    def _send(self, commands: list[tuple[Any, ...]]) -> bool:
        """Write the commands in one packet (one system call for a start's two or three commands)."""
        try:
            self.connection.send_packed_command(self.connection.pack_commands(commands))
            self.unread += len(commands)
        except Exception:  # noqa: BLE001 - the connection broke: the pass goes on unprotected
            self._drop()
            return False
        return True

    def close(self) -> None:
        """Read the replies of what was written, and hand the connection back."""
        self._read_known()
        if self.connection is None:
            return
        try:
            for _ in range(self.unread):
                self.connection.read_response()
        except Exception:  # noqa: BLE001 - a count that was not confirmed only matters if it reaches the limit
            self._drop()
            return
        self.pool.release(self.connection)
        self.connection = None

    def _drop(self) -> None:
        try:
            self.connection.disconnect()
            self.pool.release(self.connection)
        except Exception:  # noqa: BLE001,S110 - nothing more to do with a broken connection
            pass
        self.connection = None
