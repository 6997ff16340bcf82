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

It also bounds the broker's sockets: the transport options the app did not set itself get the timeouts and
TCP keepalives of OBJECTS_HOST_LOSS_BOUND (objects/timeouts.py), so a vanished Redis host or a cut network
fails a publish or a consumer's read instead of hanging on it.
"""

from __future__ import annotations

from typing import Any

_MARK = "_objects_hardened"
_BOUNDED = "_objects_bounded"


def harden_redis_transport() -> None:
    """Patch kombu's Redis channel once per process; safe to call any number of times."""
    import redis
    from kombu.transport import redis as transport

    channel = transport.Channel
    if getattr(channel, _MARK, False):
        return
    original = channel._connparams

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        client = getattr(self.connection, "client", None)
        if client is None:
            raise redis.exceptions.ConnectionError(
                "the broker connection was already closed (Redis went away); the worker reconnects"
            )
        bound_sockets(self, client.transport_options or {})
        return original(self, asynchronous=asynchronous)

    channel._connparams = _connparams  # type: ignore[method-assign]
    setattr(channel, _MARK, True)


def bound_sockets(channel: Any, chosen: dict[str, Any]) -> None:
    """Set the channel's socket timeouts and keepalives from OBJECTS_HOST_LOSS_BOUND, except those the app's
    transport options set (`chosen`), once per channel."""
    if getattr(channel, _BOUNDED, False):
        return
    from django.core.exceptions import ImproperlyConfigured

    from ..timeouts import DEFAULT_BOUND, broker_transport_options

    try:
        options = broker_transport_options()
    except ImproperlyConfigured:  # Django's settings are not configured in this process
        options = broker_transport_options(DEFAULT_BOUND)
    for name, value in options.items():
        if name not in chosen:
            setattr(channel, name, value)
    setattr(channel, _BOUNDED, True)
