"""Broker transport hardening: keep a Celery worker alive when Redis goes away and comes back.

With Celery 5.7 / kombu 5.7 on the Redis transport, a worker that loses the broker while it has unacknowledged
messages (an ack that fails with "connection reset") can die with `Unrecoverable error: AttributeError("'NoneType'
object has no attribute 'hostname'")`: the consumer's reconnect first collects the broken connection (which
detaches the transport from its client), then closes it again, and that second close tries to put the
unacknowledged messages back through a connection that no longer has its settings. The AttributeError is not
one of the connection errors the close ignores, so it ends the worker.

`harden_redis_transport()` makes that case raise the transport's own `ConnectionError`, which the close already
ignores: the worker goes on to reconnect. Nothing is lost by skipping that restore: a doorbell carries no
invocation, kombu restores unacked messages after its visibility timeout, and the sweeper re-rings every key
whose inbox waits (tests/faults/test_redis.py, tests/unit/test_broker.py).
"""

from __future__ import annotations

from typing import Any

_MARK = "_objects_hardened"


def harden_redis_transport() -> None:
    """Patch kombu's Redis channel once per process; safe to call any number of times."""
    import redis
    from kombu.transport import redis as transport

    channel = transport.Channel
    if getattr(channel, _MARK, False):
        return
    original = channel._connparams

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError(
                "the broker connection was already closed (Redis went away); the worker reconnects"
            )
        return original(self, asynchronous=asynchronous)

    channel._connparams = _connparams  # type: ignore[method-assign]
    setattr(channel, _MARK, True)
