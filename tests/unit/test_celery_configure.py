"""`objects.celery.configure(app)` on a host's own Celery app: the app's tasks go to the partition and sweeper
queues, everything else keeps the host's default queue and routes, and the host's beat entries stay."""

from __future__ import annotations

import pytest
from celery import Celery
from django.test import override_settings

from objects import celery as objects_celery
from objects.routing import partition_of


def host_app(**conf) -> Celery:
    app = Celery("host", set_as_current=False, broker="memory://")
    app.conf.update(conf)
    return app


def queue_of(app: Celery, name: str, args=(), **options) -> str:
    return app.amqp.router.route(options, name, args, {})["queue"].name


@pytest.mark.parametrize("configured_before", [True, False])
def test_the_apps_tasks_go_to_their_queues(configured_before):
    app = host_app()
    if configured_before:
        app.conf.task_default_queue  # noqa: B018 - loads the configuration before configure() runs
    objects_celery.configure(app)
    assert queue_of(app, "objects.sweep") == "objects.sweeper"
    assert queue_of(app, "objects.drain_partition", [3]) == "objects.p3"
    assert queue_of(app, "objects.drain", ["Cart", "alice", 0]) == f"objects.p{partition_of('Cart', 'alice')}"
    assert queue_of(app, "objects.drain", ["Cart", "alice"], queue="objects.p7") == "objects.p7"
    declared = {q.name: q for q in app.conf.task_queues}
    assert {f"objects.p{n}" for n in range(8)} | {"objects.sweeper"} <= set(declared)
    assert declared["objects.p3"].routing_key == "objects.p3"
    assert objects_celery.is_configured(app)


def test_a_host_task_keeps_the_default_queue_and_the_hosts_routes():
    app = host_app(task_routes={"reports.*": {"queue": "reports"}})
    objects_celery.configure(app)
    assert app.conf.task_default_queue == "celery"
    assert queue_of(app, "shop.tasks.send_receipt") == "celery"
    assert queue_of(app, "reports.tasks.monthly") == "reports"
    # a worker started without -Q still consumes the host's default queue
    assert "celery" in {q.name for q in app.conf.task_queues}


def test_a_hosts_own_queues_and_beat_entries_stay():
    from kombu import Queue

    app = host_app(
        task_queues=[Queue("mail"), Queue("default")],
        task_default_queue="default",
        beat_schedule={"nightly": {"task": "shop.tasks.nightly", "schedule": 86400.0}},
    )
    objects_celery.configure(app)
    names = [q.name for q in app.conf.task_queues]
    assert names[:2] == ["mail", "default"] and "objects.p0" in names
    assert queue_of(app, "shop.tasks.nightly") == "default"
    assert set(app.conf.beat_schedule) == {"nightly", "objects-sweep"}
    sweep = app.conf.beat_schedule["objects-sweep"]
    assert (sweep["task"], sweep["options"]["queue"]) == ("objects.sweep", "objects.sweeper")


@override_settings(OBJECTS_PARTITIONS=3, OBJECTS_SWEEP_INTERVAL=2.5)
def test_partitions_and_sweep_interval_come_from_the_settings():
    app = objects_celery.configure(host_app())
    names = {q.name for q in app.conf.task_queues}
    assert {"objects.p0", "objects.p1", "objects.p2"} <= names and "objects.p3" not in names
    assert app.conf.beat_schedule["objects-sweep"]["schedule"] == 2.5
    assert objects_celery.queues() == ["objects.p0", "objects.p1", "objects.p2", "objects.sweeper"]


def test_configure_twice_changes_nothing():
    app = objects_celery.configure(host_app())
    queues, routes = list(app.conf.task_queues), list(app.conf.task_routes)
    objects_celery.configure(app)
    assert list(app.conf.task_queues) == queues and list(app.conf.task_routes) == routes


def test_the_projects_app_is_configured_this_way():
    from config.celery import app

    assert objects_celery.is_configured(app)
    assert app.conf.task_default_queue == "celery"


def test_worker_argv_serves_every_partition_and_the_sweeper_by_default():
    argv = objects_celery.worker_argv()
    assert argv[:3] == ["worker", "--queues", ",".join([*(f"objects.p{n}" for n in range(8)), "objects.sweeper"])]
    assert argv[argv.index("--pool") + 1] == "threads" and argv[argv.index("--concurrency") + 1] == "4"


def test_worker_argv_takes_partitions_concurrency_and_more_arguments():
    argv = objects_celery.worker_argv(partitions=[3, 1, 3], sweeper=False, concurrency=9, extra=["--max-tasks", "5"])
    assert argv[2] == "objects.p1,objects.p3"
    assert argv[argv.index("--concurrency") + 1] == "9" and argv[-2:] == ["--max-tasks", "5"]
    with pytest.raises(ValueError, match="No partition 8"):
        objects_celery.worker_argv(partitions=[8])
    with pytest.raises(ValueError, match="no queue"):
        objects_celery.worker_argv(partitions=[], sweeper=False)


def test_the_worker_commands_partitions_option():
    from django.core.management import CommandError

    from objects.management.commands.objects_worker import parse_partitions

    assert parse_partitions("0-3,6") == [0, 1, 2, 3, 6]
    with pytest.raises(CommandError, match="numbers and ranges"):
        parse_partitions("all")


@override_settings(OBJECTS_REDIS_URL="redis://127.0.0.1:6390/4")
def test_an_app_without_a_broker_uses_the_objects_redis_and_a_named_broker_stays():
    assert objects_celery.configure(Celery("host", set_as_current=False)).conf.broker_url == "redis://127.0.0.1:6390/4"
    assert objects_celery.configure(host_app()).conf.broker_url == "memory://"
