"""The loop's invocation INSERTs, grouped: one statement and one commit per group of requests that arrive
together."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from ..store.inserts import fresh_group_sql
from .postgres import Postgres
from .signals import ring

log = logging.getLogger("objects.asgi")


class GroupInsert:
    """The loop's invocation `INSERT`s, grouped: the invocations that arrive while the loop's previous statement
    runs go into the next one together (`store.inserts.fresh_group_sql`, one statement and one commit for the
    group), so under load a statement and a commit are paid per group, not per invocation, and with one
    request at a time nothing waits (a group of one runs `fresh_statement`'s own statement). The sends of a
    group ring their partitions once, after the commit, in one Redis round trip. Each request still gets its
    answer only once its invocation is committed.

    The statements run in a task of their own, so a request that goes away does not cancel its group's. A group
    whose statement PostgreSQL refused (nothing was written) is inserted again one by one, so each request
    gets its own answer; a lost connection (the statement may have committed) is each request's error, as
    for one invocation alone."""

    LIMIT = 100  # invocations per statement

    def __init__(self, postgres: Postgres) -> None:
        self.postgres = postgres
        self.waiting: list[_Entry] = []
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def insert(self, sql: str, params: list[Any], uid: Any, send_partition: int | None) -> Any:
        """The invocation inserted with its group: (id, instance id), or None when its key has no row (nothing
        written). `sql` and `params` are `fresh_statement`'s; `send_partition` is rung after the commit."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # another loop's group is not this one's
            self.waiting, self.task, self.loop = [], None, loop
        entry = _Entry(sql, params, uid, send_partition, loop.create_future())
        self.waiting.append(entry)
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        row = await entry.future
        return await self.alone(sql, params, send_partition) if row is _ALONE else row

    async def alone(self, sql: str, params: list[Any], send_partition: int | None) -> Any:
        """One invocation inserted by its own statement (and its partition rung, for a send)."""
        row = await self.postgres.fetchone(sql, params)
        if row is not None and send_partition is not None:
            await ring([send_partition])
        return row

    async def _run(self) -> None:
        while self.waiting:
            group, self.waiting = self.waiting[: self.LIMIT], self.waiting[self.LIMIT :]
            try:
                await self._group(group)
            except BaseException as exc:  # noqa: BLE001 - each waiting request gets it
                for entry in group:
                    if not entry.future.done():
                        entry.future.set_exception(exc if isinstance(exc, Exception) else psycopg.OperationalError())
                if not isinstance(exc, Exception):
                    raise

    async def _group(self, group: list[_Entry]) -> None:
        flush = any(entry.send_partition is not None for entry in group)  # only calls: see Postgres._run
        if len(group) == 1:
            (entry,) = group
            row = await self.postgres.fetchone(entry.sql, entry.params, flush=flush)
            rows = {entry.uid: row} if row is not None else {}
        else:
            columns = [list(column) for column in zip(*(entry.params[:-2] for entry in group), strict=True)]
            try:
                found = await self.postgres.fetchall(fresh_group_sql(), columns, flush=flush)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:  # refused as a whole, nothing written: each again, alone
                log.warning("ingress: a group of %d refused, inserted one by one: %s", len(group), exc)
                for entry in group:
                    _settle(entry, _ALONE)
                return
            rows = {uid: (pk, instance_id) for pk, instance_id, uid in found}
        for entry in group:  # calls first: they ring with their wait
            if entry.send_partition is None:
                _settle(entry, rows.get(entry.uid))
        partitions = sorted({e.send_partition for e in group if e.send_partition is not None and e.uid in rows})
        if partitions:
            await ring(partitions)
        for entry in group:
            if entry.send_partition is not None:
                _settle(entry, rows.get(entry.uid))


@dataclass(slots=True)
class _Entry:
    sql: str
    params: list[Any]
    uid: Any
    send_partition: int | None
    future: asyncio.Future[Any]


_ALONE = object()  # a group's answer to its entries: insert yourself, alone


def _settle(entry: _Entry, result: Any) -> None:
    if not entry.future.done():  # its request may have gone away
        entry.future.set_result(result)
