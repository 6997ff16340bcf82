"""objects.signals.notify.pipelined: several Redis commands in one packet on a pooled connection, without redis-py's
Pipeline object (the ring and wait of every call, the done signals of every pass)."""

from __future__ import annotations

from unittest import mock

import pytest
import redis

from objects.signals.notify import pipelined


@pytest.fixture
def keys(redis_client):
    names = ["pipelined:a", "pipelined:b"]
    redis_client.delete(*names)
    yield names
    redis_client.delete(*names)


def test_every_reply_comes_back_raw_in_order(redis_client, keys):
    a, b = keys
    replies = pipelined([("RPUSH", a, "x"), ("INCR", b), ("BLPOP", a, 1), ("BLPOP", a, 0.05)])
    assert replies == [1, 1, [a.encode(), b"x"], None]


def test_the_commands_leave_in_one_packet(redis_client, keys):
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command

    def spy(conn, command, check_health=True):
        sent.append(command)
        return real(conn, command, check_health)

    with mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", spy):
        pipelined([("INCR", keys[0]), ("INCR", keys[0]), ("GET", keys[0])])
    assert len(sent) == 1


def test_an_error_reply_is_raised_after_every_reply_is_read(redis_client, keys):
    a, b = keys
    redis_client.set(a, "not a list")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipelined([("LPUSH", a, "x"), ("INCR", b)])
    assert redis_client.get(b) == b"1"  # the command after the error ran
    assert pipelined([("GET", b)]) == [b"1"]  # and the pooled connection is still in step


def test_a_connection_the_server_dropped_is_replaced_once(redis_client, keys, settings):
    pipelined([("PING",)])  # a pooled connection now exists
    admin = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
    finally:
        admin.close()
    assert pipelined([("INCR", keys[0])]) == [1]


def test_a_connection_that_breaks_while_sending_is_dropped_and_the_commands_sent_again(keys, monkeypatch):
    real = redis.connection.AbstractConnection.send_packed_command
    broken = []

    def once(conn, command, check_health=True):
        if not broken:
            broken.append(conn)
            raise redis.ConnectionError("broken for the test")
        return real(conn, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", once)
    assert pipelined([("INCR", keys[0])]) == [1]
    assert len(broken) == 1


def test_a_server_that_stays_away_raises(monkeypatch):
    def refuse(conn, command, check_health=True):
        raise redis.ConnectionError("refused for the test")

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", refuse)
    with pytest.raises(redis.ConnectionError):
        pipelined([("PING",)])
