"""`manage.py objects_beat`: Celery beat for the host's app, which objects.celery.configure gave the sweeper's
entry. Run one per deployment. Arguments after `--` go to `celery beat`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ._celery import host_app


class Command(BaseCommand):
    help = "Run Celery beat, which sends the sweeper's task every OBJECTS_SWEEP_INTERVAL seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--schedule", "-s", default="celerybeat-schedule", help="Beat's state file (default: celerybeat-schedule)."
        )
        parser.add_argument("--loglevel", "-l", default="info")
        parser.add_argument("celery_args", nargs="*", help="More `celery beat` arguments, after --.")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = ["beat", "--schedule", options["schedule"], "--loglevel", options["loglevel"], *options["celery_args"]]
        code = host_app().start(argv=argv)
        if code:
            raise SystemExit(code)
