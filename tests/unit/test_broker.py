"""The Redis transport hardening (objects/signals/broker.py): a worker's reconnect after Redis went away must not end
the worker. The consumer collects the broken connection (which detaches the transport from its settings) and
then closes it again; with an unacknowledged message that close tries to put it back and must fail with a
connection error, which kombu's close ignores, not with an AttributeError, which ends the worker."""

from __future__ import annotations

import redis
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.common import ignore_errors

from objects.signals.broker import harden_redis_transport


def test_harden_is_idempotent():
    from kombu.transport import redis as transport

    harden_redis_transport()
    patched = transport.Channel._connparams
    harden_redis_transport()
    assert transport.Channel._connparams is patched


def test_close_of_a_collected_connection_with_an_unacked_message_does_not_crash(redis_client):
    harden_redis_transport()  # the Celery app does this at import; explicit here so the test states it
    conn = Connection(settings.CELERY_BROKER_URL)
    channel = conn.default_channel
    queue = Queue("objects.test-broker", Exchange("objects.test-broker"), routing_key="objects.test-broker")
    try:
        Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
        received = []
        Consumer(channel, [queue], callbacks=[lambda body, message: received.append(body)]).consume()
        conn.drain_events(timeout=5)
        assert received == [{"n": 1}] and channel.qos._delivered, "the message must be delivered and not acked"
        errors = conn.connection_errors
        conn._do_close_transport()  # what Connection.collect() leaves behind: the transport without its settings

        ignore_errors(conn, conn.close)  # raised AttributeError ('NoneType' ... 'hostname') without the hardening

        assert redis.exceptions.ConnectionError in errors
    finally:
        redis_client.delete("objects.test-broker", "_kombu.binding.objects.test-broker", "unacked", "unacked_index")
        redis_client.delete("_kombu.binding_permanent.objects.test-broker")
