"""The project's Celery app: broker from the settings (CELERY_*), tasks autodiscovered, set up for virtual
objects by objects.celery.configure (partition queues, the sweeper's queue and beat entry)."""

import os

from celery import Celery

import objects.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
objects.celery.configure(app)
