"""The Celery app: broker from REDIS_URL, tasks autodiscovered, queues objects.p<n> per partition."""

import os

from celery import Celery
from kombu import Exchange, Queue

from objects.broker import harden_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

harden_redis_transport()  # a worker survives Redis going away and coming back (objects/broker.py)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes the DB connection around every task unless this is set; that
# costs a new PostgreSQL backend per task (reference/performance-notes.md, finding 1).
app.conf.CELERY_DB_REUSE_MAX = 1_000_000
app.autodiscover_tasks()


def _queues() -> list[Queue]:
    # Celery puts its default exchange (named after task_default_queue) in place of the empty name, so the
    # exchange's binding table lives in Redis; workers declare it again when they reconnect, and a doorbell
    # lost to a FLUSHALL or a restart meanwhile is re-rung by the sweeper (tests/faults/test_redis.py).
    from django.conf import settings

    names = [f"objects.p{n}" for n in range(int(getattr(settings, "OBJECTS_PARTITIONS", 8)))] + ["objects.sweeper"]
    return [Queue(name, Exchange("", type="direct"), routing_key=name) for name in names]


@app.on_after_configure.connect
def _configure_from_settings(sender: Celery, **_: object) -> None:
    """Queues and the sweeper's schedule come from the Django settings once they are loaded (a settings
    module that imports and overrides config.settings may still be importing when this module is)."""
    from django.conf import settings

    sender.conf.task_queues = _queues()
    sender.conf.task_default_queue = "objects.sweeper"
    sender.conf.beat_schedule = {
        "objects-sweep": {
            "task": "objects.sweep",
            "schedule": float(getattr(settings, "OBJECTS_SWEEP_INTERVAL", 5.0)),
            "options": {"queue": "objects.sweeper", "expires": 30},
        },
    }
