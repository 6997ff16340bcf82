"""The loop's PostgreSQL connections: a bounded pool, a statement per connection checkout, `PoolBusy` when none
comes free in time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import psycopg_pool
from django.db import connections

from .. import conf
from ..store.sql import PING_SQL, synchronous_commit_sql
from .plumbing import LOOP_NAME, loop_name


class Postgres:
    """The loop's PostgreSQL connections: a bounded pool (psycopg_pool) of at most OBJECTS_WEB_DB_POOL_SIZE,
    opened as needed, taken and given back per statement. A statement waits up to OBJECTS_WEB_DB_POOL_TIMEOUT
    for a connection, then raises PoolBusy (the ingress's 503 with Retry-After), so a burst of requests
    queues instead of taking PostgreSQL's connection slots from the workers. Each connection is in autocommit,
    named `objects-web-loop` in pg_stat_activity, and keeps one cursor, whose statements psycopg prepares after
    DATABASE_PREPARE_THRESHOLD runs as on Django's connections. A connection whose statement failed is closed
    (the pool opens another). The pool belongs to the event loop that opened it (one per process under
    uvicorn)."""

    def __init__(self) -> None:
        self.pool: psycopg_pool.AsyncConnectionPool[_LoopConnection] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def fetchone(self, sql: str, params: list[Any], *, flush: bool = True) -> Any:
        return await self._run(sql, params, one=True, flush=flush)

    async def fetchall(self, sql: str, params: list[Any], *, flush: bool = True) -> list[Any]:
        return await self._run(sql, params, one=False, flush=flush)

    async def _run(self, sql: str, params: list[Any], *, one: bool, flush: bool = True) -> Any:
        """Run one statement on a pooled connection. Without `flush`, its commit does not wait for the WAL to
        reach the disk (`synchronous_commit` off for the connection until a flushed statement needs it on):
        only for a call's invocation, whose answer waits for a worker's later commit, which is flushed and so
        makes everything before it in the WAL durable too (docs/decisions/0007)."""
        pool = await self._pool()
        for spare in range(pool.max_size, -1, -1):
            try:
                conn = await pool.getconn()
            except psycopg_pool.PoolTimeout as exc:
                if pool.get_stats().get("pool_size", 0) < pool.max_size:  # it could not connect: the database is down
                    raise
                raise PoolBusy(pool.max_size, pool.timeout) from exc
            try:
                if time.monotonic() - conn.used > IDLE_CHECK_AFTER and not await _answers(conn):
                    continue  # ended while it sat idle (a restart, a cut network): closed, try another
                if conn.flush is not flush:
                    await conn.kept.execute(synchronous_commit_sql(flush))
                    conn.flush = flush
                await conn.kept.execute(sql, params)
                return await (conn.kept.fetchone() if one else conn.kept.fetchall())
            except psycopg.OperationalError as exc:
                await conn.close()
                if exc.sqlstate not in ENDED_BY_SERVER or not spare:
                    raise
                # The server ended this idle connection (a restart) before the statement ran: the pool's other
                # idle connections likely went with it, and each found so is closed; the statement goes on another.
            except BaseException:
                await conn.close()
                raise
            finally:
                conn.used = time.monotonic()
                await pool.putconn(conn)
        raise psycopg.OperationalError("every connection of the loop's pool was ended by the server")

    async def _pool(self) -> psycopg_pool.AsyncConnectionPool[_LoopConnection]:
        loop = asyncio.get_running_loop()
        if self.pool is None or self.loop is not loop:  # another loop's pool is not usable here
            params = connections["default"].get_connection_params()  # Django's: its adapters, prepare threshold
            params.pop("cursor_factory", None)  # Django's is a synchronous cursor class
            self.pool = psycopg_pool.AsyncConnectionPool(
                connection_class=_LoopConnection,
                kwargs={**params, "autocommit": True, "application_name": loop_name()},
                min_size=0,
                max_size=conf.get("OBJECTS_WEB_DB_POOL_SIZE"),
                timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),
                reconnect_timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),  # then a later request tries again
                configure=_keep_cursor,
                name=LOOP_NAME,
                open=False,
            )
            self.loop = loop
            await self.pool.open()
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None and self.loop is asyncio.get_running_loop():
            await pool.close(timeout=1)


# SQLSTATEs of a session the server ended while it sat idle (shutdown, crash, a terminated backend): a statement
# sent on it afterwards never ran, so running it on another connection cannot apply it twice.
ENDED_BY_SERVER = {"57P01", "57P02", "57P05"}


class _LoopConnection(psycopg.AsyncConnection[Any]):
    kept: psycopg.AsyncCursor[Any]  # the connection's one cursor (`_keep_cursor`)
    used: float = 0.0  # time.monotonic() when it last ran a statement
    flush: bool = True  # whether its commits wait for the WAL flush (synchronous_commit as configured)


async def _keep_cursor(conn: _LoopConnection) -> None:
    conn.kept = conn.cursor()
    conn.used = time.monotonic()


IDLE_CHECK_AFTER = 2.0  # seconds: a connection idle longer answers a SELECT 1 before it is given a statement


async def _answers(conn: _LoopConnection) -> bool:
    """Whether an idle connection still answers; one that does not is closed. A process in steady use never
    pays for this: only a connection left idle for IDLE_CHECK_AFTER is asked."""
    try:
        await conn.kept.execute(PING_SQL)
        await conn.kept.fetchone()
    except psycopg.Error:
        await conn.close()
        return False
    return True


class PoolBusy(psycopg.OperationalError):
    """No connection of the loop's pool came free within its timeout: nothing was sent to the database."""

    wait = 1  # seconds: the Retry-After of its 503 (objects/api/errors.py)

    def __init__(self, size: int, timeout: float) -> None:
        super().__init__(
            f"All {size} of this web process's database connections stayed busy for {timeout:g} s; retry shortly."
        )
