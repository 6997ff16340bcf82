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
    # Published to the default exchange (""): a message goes straight to the list named by its routing key,
    # with no binding table in Redis, so a FLUSHALL or a Redis restart cannot make queues unroutable.
    from django.conf import settings

    names = [f"objects.p{n}" for n in range(int(getattr(settings, "OBJECTS_PARTITIONS", 8)))] + ["objects.sweeper"]
    return [Queue(name, Exchange("", type="direct"), routing_key=name) for name in names]


app.conf.task_queues = _queues()
app.conf.task_default_queue = "objects.sweeper"

app.conf.beat_schedule = {
    "objects-sweep": {
        "task": "objects.sweep",
        "schedule": float(os.environ.get("OBJECTS_SWEEP_INTERVAL", "5")),
        "options": {"queue": "objects.sweeper", "expires": 30},
    },
}
