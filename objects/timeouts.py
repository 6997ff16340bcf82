"""How long a vanished host or a cut network may hold a key: the network timers of every PostgreSQL and Redis
connection, derived from one bound, OBJECTS_HOST_LOSS_BOUND (seconds). Keepalives find a dead peer within half
the bound; a worker's session ends a transaction idle or a statement running for the whole bound."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from celery.signals import worker_init

DEFAULT_BOUND = 30.0
KEEPALIVE_COUNT = 3  # unanswered probes before a peer counts as gone


@dataclass(frozen=True)
class Timers:
    """The timers of one bound, in the units the drivers take."""

    bound: float
    detect: float  # seconds until a silent peer is given up: keepalives or unacknowledged data
    idle: int  # seconds a connection is quiet before the first keepalive probe
    interval: int  # seconds between probes
    count: int

    @property
    def detect_ms(self) -> int:
        return int(self.detect * 1000)

    @property
    def bound_ms(self) -> int:
        return int(self.bound * 1000)


def timers(bound: float | None = None) -> Timers:
    """The timers for `bound` (default: the OBJECTS_HOST_LOSS_BOUND setting). Half the bound finds a dead peer;
    the other half is for another worker to take the key over (a held key's drain comes back every second)."""
    if bound is None:
        from . import conf

        bound = conf.get("OBJECTS_HOST_LOSS_BOUND")
    detect = bound / 2
    idle = max(1, int(detect / 2))
    interval = max(1, int((detect - idle) / KEEPALIVE_COUNT))
    count = max(1, min(KEEPALIVE_COUNT, int((detect - idle) / interval)))  # keepalive timers are whole seconds
    return Timers(bound=float(bound), detect=detect, idle=idle, interval=interval, count=count)


def _joined(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def postgres_options(bound: float = DEFAULT_BOUND, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connection options (Django's DATABASES OPTIONS, libpq's parameters) for every process: TCP keepalives
    and a user timeout on the client's socket (a vanished server or a cut network fails the call instead of
    hanging), the same on the server's socket for this session (`-c tcp_keepalives_*`: PostgreSQL ends the
    session of a vanished client, which rolls its transaction back and frees its key), and a connect timeout.
    `options`: the OPTIONS already set; their own `options` string is kept, ours appended."""
    t = timers(bound)
    existing = dict(options or {})
    server = (
        f"-c tcp_keepalives_idle={t.idle} -c tcp_keepalives_interval={t.interval} "
        f"-c tcp_keepalives_count={t.count} -c tcp_user_timeout={t.detect_ms}"
    )
    return {
        **existing,
        "keepalives": 1,
        "keepalives_idle": t.idle,
        "keepalives_interval": t.interval,
        "keepalives_count": t.count,
        "tcp_user_timeout": t.detect_ms,
        "connect_timeout": max(2, int(t.detect / 2)),
        "options": _joined(str(existing.get("options", "")), server),
    }


def worker_session_options(bound: float | None = None) -> str:
    """libpq `options` of a worker's sessions: a transaction left idle, or one statement, is ended after the
    bound (a hung worker process holds its keys no longer; a handler must not wait inside its transaction)."""
    t = timers(bound)
    return f"-c idle_in_transaction_session_timeout={t.bound_ms} -c statement_timeout={t.bound_ms}"


def apply_worker_session(alias: str = "default") -> None:
    """Give the database connections of this process a worker's session timeouts from now on (connections
    already open are closed, the next query opens one with them)."""
    from django.db import connections

    settings_dict = connections.settings[alias]
    if settings_dict["ENGINE"].rsplit(".", 1)[-1] not in ("postgresql", "postgis"):
        return
    options = settings_dict.setdefault("OPTIONS", {})
    ours = worker_session_options()
    current = str(options.get("options", ""))
    if ours not in current:
        options["options"] = _joined(current, ours)
    connections[alias].close()


@worker_init.connect
def _worker_session(**_: Any) -> None:
    apply_worker_session()


def redis_options(bound: float | None = None) -> dict[str, Any]:
    """redis-py client options for every Redis client of the framework: bounded connects and replies, TCP
    keepalives and a user timeout (a vanished Redis host or a cut network fails the call within half the
    bound), and a PING before a connection that was quiet for a while is used again."""
    t = timers(bound)
    return {
        "socket_timeout": min(5.0, t.detect),
        "socket_connect_timeout": min(2.0, t.detect),
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_socket_options(t),
        "health_check_interval": max(1, int(t.detect)),
    }


def keepalive_socket_options(t: Timers) -> dict[int, int]:
    found = {
        "TCP_KEEPIDLE": t.idle,
        "TCP_KEEPINTVL": t.interval,
        "TCP_KEEPCNT": t.count,
        "TCP_USER_TIMEOUT": t.detect_ms,
    }
    return {getattr(socket, name): value for name, value in found.items() if hasattr(socket, name)}


def broker_transport_options(bound: float | None = None) -> dict[str, Any]:
    """Celery's Redis transport options (kombu passes them to redis-py): those of `redis_options`."""
    return redis_options(bound)
