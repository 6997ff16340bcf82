"""Wire a host's Celery app for virtual objects with one call, `objects.celery.configure(app)`.

It declares the partition queues and the sweeper's queue, routes the app's own tasks there and adds the
sweeper's beat entry; an app without a broker gets the app's Redis. The host's default queue, its routes and
its other beat entries stay as they were.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from objects import conf
from objects.routing import (
    DRAIN_PARTITION_TASK,
    DRAIN_TASK,
    SWEEP_QUEUE,
    SWEEP_TASK,
    all_queues,
    partition_of,
    queue_name,
)
from objects.signals.broker import harden_redis_transport

SWEEP_ENTRY = "objects-sweep"
# One direct exchange for the app's queues (its binding table lives in Redis; workers declare it again when
# they reconnect, and a doorbell lost to a FLUSHALL or a restart meanwhile is re-rung by the sweeper).
EXCHANGE = Exchange("objects", type="direct")
# Celery's Django fix-up closes the database connection around every task unless this is set: a new
# PostgreSQL backend per doorbell. A host that sets it keeps its value.
DB_REUSE_MAX = 1_000_000

# What `manage.py objects_worker` runs unless told otherwise: threads suit handlers that wait on the
# database and on calls to other keys; one process serves every partition.
DEFAULT_POOL = "threads"
DEFAULT_CONCURRENCY = 4

_configured: weakref.WeakSet[Celery] = weakref.WeakSet()


def queues() -> list[str]:
    """The queues a worker that serves every partition consumes: objects.p0..p<N-1> and the sweeper's."""
    return [*all_queues(), SWEEP_QUEUE]


def worker_argv(
    *,
    partitions: Iterable[int] | None = None,
    sweeper: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    pool: str = DEFAULT_POOL,
    hostname: str | None = None,
    loglevel: str = "info",
    extra: Sequence[str] = (),
) -> list[str]:
    """The `celery worker` arguments of a worker for virtual objects: the given partitions' queues (all by
    default) and the sweeper's. The one place that builds them (`manage.py objects_worker`, `make run`)."""
    count = conf.get("OBJECTS_PARTITIONS")
    chosen = list(range(count)) if partitions is None else sorted(set(partitions))
    wrong = [p for p in chosen if not 0 <= p < count]
    if wrong:
        raise ValueError(f"No partition {wrong[0]}: OBJECTS_PARTITIONS is {count}, so partitions are 0 to {count - 1}.")
    names = [queue_name(p) for p in chosen] + ([SWEEP_QUEUE] if sweeper else [])
    if not names:
        raise ValueError("The worker would consume no queue: give it partitions or the sweeper's queue.")
    argv = ["worker", "--queues", ",".join(names), "--pool", pool, "--concurrency", str(concurrency)]
    argv += ["--without-gossip", "--without-mingle", "--loglevel", loglevel]
    if hostname:
        argv += ["--hostname", hostname]
    return [*argv, *extra]


def configured_app() -> Celery | None:
    """The host's Celery app that `configure` set up: the current app when it is one, else any such app."""
    from celery import current_app

    current = current_app._get_current_object()
    if current in _configured:
        return current
    apps = list(_configured)
    return apps[-1] if apps else None


def route(name: str, args: Any = (), kwargs: Any = None, options: Any = None, task: Any = None, **_: Any) -> Any:
    """Celery router for the app's tasks only (None for every other task: the host's routes decide). A queue
    given to apply_async wins over this, as it does over any route."""
    if name == SWEEP_TASK:
        return {"queue": SWEEP_QUEUE}
    if name == DRAIN_PARTITION_TASK and args:
        return {"queue": queue_name(int(args[0]))}
    if name == DRAIN_TASK and args and len(args) >= 2:
        return {"queue": queue_name(partition_of(args[0], args[1]))}
    return None


def configure(app: Celery) -> Celery:
    """Set `app` up for virtual objects (call it once, where the host creates its Celery app); returns `app`.

    The settings are applied once the app's configuration is loaded (Django's settings may still be
    importing when the host's Celery module is)."""
    harden_redis_transport()  # a worker survives Redis going away and coming back (objects/signals/broker.py)
    if app not in _configured:
        _configured.add(app)
        if app.configured:
            _apply(app)
        else:
            app.on_after_configure.connect(_on_after_configure, sender=app, weak=False)
    return app


def is_configured(app: Celery) -> bool:
    return app in _configured


def _on_after_configure(sender: Celery, **_: Any) -> None:
    _apply(sender)


def _apply(app: Celery) -> None:
    c = app.conf
    declared = list(c.task_queues or [])
    if not declared and c.task_default_queue:
        # Celery consumes its default queue only while no queue is declared: declare it, so that a host's
        # worker started without -Q still consumes it.
        name = c.task_default_queue
        exchange = Exchange(c.task_default_exchange or name, type=c.task_default_exchange_type)
        declared.append(Queue(name, exchange, routing_key=c.task_default_routing_key or name))
    names = {q.name for q in declared}
    c.task_queues = declared + [Queue(n, EXCHANGE, routing_key=n) for n in queues() if n not in names]
    routes = c.task_routes
    if routes is None:
        routes = []
    elif not isinstance(routes, (list, tuple)):
        routes = [routes]
    c.task_routes = [route, *[r for r in routes if r is not route]]
    c.beat_schedule = {
        **(c.beat_schedule or {}),
        SWEEP_ENTRY: {
            "task": SWEEP_TASK,
            "schedule": float(conf.get("OBJECTS_SWEEP_INTERVAL")),
            "options": {"queue": SWEEP_QUEUE, "expires": 30},
        },
    }
    if not c.broker_url:  # a host that names no broker uses the app's Redis (objects.conf.redis_url)
        with contextlib.suppress(ImproperlyConfigured):  # no Redis URL either: manage.py check says so (E001)
            c.broker_url = conf.redis_url()
    if c.get("CELERY_DB_REUSE_MAX") is None:
        c.CELERY_DB_REUSE_MAX = DB_REUSE_MAX
