"""`manage.py objects_worker`: a Celery worker on the partition queues and the sweeper's queue, with the app's
pool and concurrency defaults (objects.celery.worker_argv). Arguments after `--` go to `celery worker`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import objects.celery

from ._celery import host_app


def parse_partitions(text: str) -> list[int]:
    """`0-3,6` -> [0, 1, 2, 3, 6]."""
    numbers: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            numbers += range(int(first), int(last or first) + 1)
    except ValueError:
        raise CommandError(f"--partitions {text!r}: give numbers and ranges, such as 0-3,6.") from None
    return numbers


class Command(BaseCommand):
    help = "Run a Celery worker for virtual objects on every partition queue and the sweeper's queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partitions", help="Only these partitions' queues, such as 0-3,6 (default: all).")
        parser.add_argument("--no-sweeper", action="store_true", help="Leave the sweeper's queue to other workers.")
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=objects.celery.DEFAULT_CONCURRENCY,
            help=f"Tasks run at once (default {objects.celery.DEFAULT_CONCURRENCY}).",
        )
        parser.add_argument(
            "--pool",
            "-P",
            default=objects.celery.DEFAULT_POOL,
            help=f"Celery's pool (default {objects.celery.DEFAULT_POOL}).",
        )
        parser.add_argument("--hostname", "-n", help="The worker's node name (Celery's default: celery@%%h).")
        parser.add_argument("--loglevel", "-l", default="info")
        parser.add_argument("celery_args", nargs="*", help="More `celery worker` arguments, after --.")

    def handle(self, *args: Any, **options: Any) -> None:
        app = host_app()
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be 1 or more.")
        partitions = parse_partitions(options["partitions"]) if options["partitions"] else None
        try:
            argv = objects.celery.worker_argv(
                partitions=partitions,
                sweeper=not options["no_sweeper"],
                concurrency=options["concurrency"],
                pool=options["pool"],
                hostname=options["hostname"],
                loglevel=options["loglevel"],
                extra=options["celery_args"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        code = app.start(argv=argv)
        if code:
            raise SystemExit(code)
