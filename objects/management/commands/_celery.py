"""What the worker and beat commands share: the host's Celery app and the arguments handed on to Celery."""

from __future__ import annotations

from celery import Celery
from django.core.management.base import CommandError

import objects.celery


def host_app() -> Celery:
    app = objects.celery.configured_app()
    if app is None:
        raise CommandError(
            "No Celery app is set up for virtual objects: call objects.celery.configure(app) where your project "
            "creates its Celery app, and import that module from your project package's __init__.py."
        )
    return app
