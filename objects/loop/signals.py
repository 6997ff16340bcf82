"""The doorbell and the done signal on the loop's own Redis connections: doorbell.py's ring, ring and wait, and
wait for the done signal, sent as the same commands (`ring_command`, `ring_and_wait_commands`). A step that
publishes a Celery message or reads the database runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import redis
import redis.asyncio as aredis
from django.db import InterfaceError, OperationalError, close_old_connections

from .. import conf
from ..models import DONE_STATUSES, Invocation
from ..signals.doorbell import is_ring_mark, publish_drain, ring_and_wait_commands, ring_command, ring_partition
from ..signals.notify import SIGNAL_TTL, apply_outcome, call_timeout, done_key, fresh_invocation
from ..timeouts import redis_options
from .plumbing import loop_name

log = logging.getLogger("objects.asgi")

_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()


def client() -> aredis.Redis:
    """The running loop's Redis client (its connections belong to that loop): at most OBJECTS_WEB_REDIS_POOL_SIZE
    connections; a round trip beyond them waits for one (up to OBJECTS_WEB_DB_POOL_TIMEOUT, then a ConnectionError,
    which a call's wait treats as Redis being unreachable: it reads the database instead)."""
    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        pool = aredis.BlockingConnectionPool.from_url(
            conf.redis_url(),
            max_connections=conf.get("OBJECTS_WEB_REDIS_POOL_SIZE"),
            timeout=conf.get("OBJECTS_WEB_DB_POOL_TIMEOUT"),
            **redis_options(),  # keepalives and timeouts within OBJECTS_HOST_LOSS_BOUND, as every Redis client
            client_name=loop_name(),  # CLIENT LIST tells the loop's connections apart
        )
        client = _redis[loop] = aredis.Redis.from_pool(pool)
    return client


async def close_client() -> None:
    """Close the running loop's Redis connections."""
    found = _redis.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


async def pipelined(commands: list[tuple[Any, ...]]) -> list[Any]:
    """`notify.pipelined` on the loop: the commands in one packet, every reply read, raw; an error reply raised
    once all are read; a broken connection dropped and the round trip sent once more on another."""
    try:
        return await _round_trip(commands)
    except redis.ConnectionError:
        return await _round_trip(commands)


async def _round_trip(commands: list[tuple[Any, ...]]) -> list[Any]:
    pool = client().connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        error: redis.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
                error = error or exc
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    if error is not None:
        raise error
    return replies


async def ring(partitions: list[int]) -> None:
    """`doorbell.ring_partition` on the loop, for each partition, in one round trip: count the ring; the first
    since the partition's last drain publishes one (Celery, in a thread). Never raises: the sweeper covers a
    lost doorbell."""
    try:
        counts = await pipelined([ring_command(partition) for partition in partitions])
    except redis.exceptions.NoScriptError:  # Redis restarted: the synchronous ring loads the script again
        for partition in partitions:
            await asyncio.to_thread(ring_partition, partition)
        return
    except Exception:  # noqa: BLE001 - Redis down: publish anyway (a duplicate drain is harmless)
        counts = [1] * len(partitions)
    for partition, count in zip(partitions, counts, strict=True):
        if int(count) == 1:
            await asyncio.to_thread(publish_drain, partition)


async def ring_and_wait(partition: int, key: str, timeout: float) -> Any:
    """`doorbell.ring_and_wait` on the loop: ring the partition and BLPOP the call's done list in one round trip."""
    try:
        return (await pipelined(ring_and_wait_commands(partition, key, timeout, SIGNAL_TTL)))[1]
    except redis.exceptions.NoScriptError:
        pass
    except redis.RedisError:
        await asyncio.to_thread(ring_partition, partition)
        raise
    await asyncio.to_thread(ring_partition, partition)
    return None


async def wait_done(invocation: Invocation, timeout: float, *, ring: bool = True) -> Invocation:
    """`notify.wait_done` on the loop: wait for the done signal, and with `ring` (a call whose doorbell has not
    rung yet) ring with the first wait; raise CallTimeout after `timeout` seconds (the invocation goes on)."""
    deadline = time.monotonic() + timeout
    key = done_key(invocation.public_id)
    first = ring
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if first:  # never waited: ring before giving up
                await asyncio.to_thread(ring_partition, invocation.partition)
            raise call_timeout(invocation.public_id, timeout)
        try:
            if first:
                first = False
                signal = await ring_and_wait(invocation.partition, key, min(remaining, 1.0))
            else:
                signal = (await pipelined([("BLPOP", key, min(remaining, 1.0))]))[0]
        except redis.RedisError:
            signal = None
            await asyncio.sleep(min(remaining, 0.25))
        if is_ring_mark(signal):
            await asyncio.to_thread(publish_drain, invocation.partition)  # no drain of the partition: start one
            continue
        if signal is not None and apply_outcome(invocation, signal[1]):
            return invocation
        try:
            fresh = await asyncio.to_thread(_fresh, invocation.pk)
        except (OperationalError, InterfaceError) as exc:  # the database is restarting: keep waiting
            log.warning("waiting for %s: database unavailable, retrying: %s", invocation.public_id, exc)
            await asyncio.sleep(min(max(deadline - time.monotonic(), 0), 0.5))
            continue
        if fresh is None or fresh.status in DONE_STATUSES:
            return fresh or invocation


def _fresh(pk: int) -> Invocation | None:
    close_old_connections()  # this thread's connection may have expired or broken since its last use
    return fresh_invocation(pk)
