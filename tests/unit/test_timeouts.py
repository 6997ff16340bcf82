"""The network timers of OBJECTS_HOST_LOSS_BOUND (objects/timeouts.py): every PostgreSQL connection (web,
worker, the event loop's) and every Redis client of the framework (its own, Celery's broker) gets TCP
keepalives and bounded waits, so a vanished host or a cut network holds a key no longer than the bound."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from kombu import Connection

from objects import conf, timeouts
from objects.signals.broker import harden_redis_transport
from tests.unit.test_settings import settings_in_subprocess


@pytest.mark.parametrize("bound", [6, 10, 15, 30, 45, 60, 120])
def test_keepalives_give_up_on_a_silent_peer_within_half_the_bound(bound):
    t = timeouts.timers(bound)
    assert t.idle + t.interval * t.count <= bound / 2
    assert t.detect_ms == bound * 500
    assert t.count >= 1 and t.idle >= 1 and t.interval >= 1


def test_the_bound_defaults_to_thirty_seconds_and_is_validated(settings):
    assert conf.get("OBJECTS_HOST_LOSS_BOUND") == 30.0
    for bad in (0, -1, "30", True):
        settings.OBJECTS_HOST_LOSS_BOUND = bad
        with pytest.raises(ImproperlyConfigured, match="OBJECTS_HOST_LOSS_BOUND"):
            conf.get("OBJECTS_HOST_LOSS_BOUND")


def test_postgres_options_set_keepalives_on_both_ends_and_keep_given_options():
    options = timeouts.postgres_options(30, {"prepare_threshold": 5, "options": "-c search_path=app"})
    assert options["prepare_threshold"] == 5
    assert (options["keepalives"], options["keepalives_idle"], options["keepalives_interval"]) == (1, 7, 2)
    assert (options["keepalives_count"], options["tcp_user_timeout"], options["connect_timeout"]) == (3, 15000, 7)
    assert options["options"] == (
        "-c search_path=app -c tcp_keepalives_idle=7 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
        "-c tcp_user_timeout=15000"
    )


def test_settings_put_the_bound_into_every_postgres_connection():
    out = settings_in_subprocess(
        "sorted((k, v) for k, v in s.DATABASES['default']['OPTIONS'].items()), s.OBJECTS_HOST_LOSS_BOUND",
        DATABASE_URL="postgres://u@db.example:5432/app",
        OBJECTS_HOST_LOSS_BOUND="10",
    )
    assert "('keepalives', 1), ('keepalives_count', 3), ('keepalives_idle', 2), ('keepalives_interval', 1)" in out
    assert "('tcp_user_timeout', 5000)" in out and "('prepare_threshold', 5)" in out
    assert "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3" in out
    assert out.endswith(" 10.0")


def test_the_event_loops_connections_take_the_same_options():
    """objects/asgi.py opens its connections with Django's connection parameters."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    params = connections["default"].get_connection_params()
    assert params["keepalives"] == 1 and params["tcp_user_timeout"] == timeouts.timers(30).detect_ms
    assert "-c tcp_keepalives_idle=" in params["options"]


def test_a_worker_session_ends_idle_transactions_and_long_statements_after_the_bound(settings):
    settings.OBJECTS_HOST_LOSS_BOUND = 12
    assert timeouts.worker_session_options() == (
        "-c idle_in_transaction_session_timeout=12000 -c statement_timeout=12000"
    )
    if connections["default"].vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    options = connections.settings["default"]["OPTIONS"]
    saved = dict(options)
    try:
        timeouts.apply_worker_session()
        timeouts.apply_worker_session()  # once only
        assert options["options"].endswith(" -c idle_in_transaction_session_timeout=12000 -c statement_timeout=12000")
        assert options["options"].count("statement_timeout") == 1
        assert "-c tcp_keepalives_idle=" in options["options"]
    finally:
        options.clear()
        options.update(saved)
        connections["default"].close()


def test_the_frameworks_redis_client_has_timeouts_and_keepalives():
    from objects.signals import notify

    kwargs = notify.client().connection_pool.connection_kwargs
    t = timeouts.timers(settings.OBJECTS_HOST_LOSS_BOUND)
    assert kwargs["socket_timeout"] == 5.0 and kwargs["socket_connect_timeout"] == 2.0
    assert kwargs["socket_keepalive"] is True and kwargs["health_check_interval"] == 15
    assert kwargs["socket_keepalive_options"][socket.TCP_KEEPIDLE] == t.idle
    assert kwargs["socket_keepalive_options"][socket.TCP_USER_TIMEOUT] == t.detect_ms


def test_the_broker_has_timeouts_and_keepalives_unless_the_app_chose_its_own(redis_client):
    harden_redis_transport()
    with Connection(settings.CELERY_BROKER_URL, transport_options={"socket_timeout": 9}) as conn:
        channel = conn.default_channel
        kwargs = channel.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 9  # the app's own choice wins
        assert kwargs["socket_keepalive"] is True and kwargs["socket_connect_timeout"] == 2.0
        assert kwargs["socket_keepalive_options"][socket.TCP_KEEPCNT] == 3
        assert channel.health_check_interval == 15
