"""System checks (`manage.py check`) for what the app needs from its host: a Redis URL, SQLite's immediate
transactions, a Celery app set up by objects.celery.configure, its admin templates and URLs within reach, and
the schema class drf-spectacular needs for the API's schema page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured

CELERY_HINT = (
    "Call objects.celery.configure(app) where your project creates its Celery app, and import that module "
    "from your project package's __init__.py so that every process loads it (docs/install.md)."
)


def _ours(app_configs: Any) -> bool:
    return app_configs is None or any(config.name == "objects" for config in app_configs)


def check_redis_url(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    from objects import conf

    if not _ours(app_configs):
        return []
    try:
        conf.redis_url()
    except ImproperlyConfigured as exc:
        return [
            Error(str(exc), hint="Virtual objects ring workers and wait for results through Redis.", id="objects.E001")
        ]
    return []


def check_sqlite_immediate(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    if not _ours(app_configs):
        return []
    errors: list[CheckMessage] = []
    for alias, database in settings.DATABASES.items():
        if not database.get("ENGINE", "").endswith("sqlite3"):
            continue
        if str(database.get("OPTIONS", {}).get("transaction_mode", "")).upper() != "IMMEDIATE":
            errors.append(
                Error(
                    f"Database {alias!r} is SQLite without OPTIONS['transaction_mode'] = 'IMMEDIATE'.",
                    hint="Without it a transaction takes SQLite's write lock only at its first write, and two "
                    "writers of one key fail with 'database is locked' instead of waiting for each other.",
                    id="objects.E002",
                )
            )
    return errors


def check_celery_app(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    from objects.celery import configured_app

    if not _ours(app_configs) or configured_app() is not None:
        return []
    return [Error("No Celery app is set up for virtual objects.", hint=CELERY_HINT, id="objects.E003")]


def check_templates(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    if not _ours(app_configs):
        return []
    try:
        get_template("admin/objects/overview.html")
    except TemplateDoesNotExist:
        return [
            Error(
                "The virtual objects admin templates cannot be found.",
                hint="Turn APP_DIRS on in the DjangoTemplates entry of TEMPLATES, or list "
                "django.template.loaders.app_directories.Loader among its loaders.",
                id="objects.E004",
            )
        ]
    return []


def check_urls(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    from django.urls import NoReverseMatch, reverse

    if not _ours(app_configs):
        return []
    try:
        reverse("objects:healthz")
    except (NoReverseMatch, ImproperlyConfigured):
        return [
            Error(
                "The virtual objects URLs are not included in ROOT_URLCONF: the ingress, the management API and "
                "/healthz answer 404.",
                hint='Add path("", include("objects.urls")) to your project\'s urlpatterns (docs/install.md).',
                id="objects.E005",
            )
        ]
    return []


def check_schema_class(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.settings import api_settings

    schema_class: Any = api_settings.DEFAULT_SCHEMA_CLASS
    if not _ours(app_configs) or (isinstance(schema_class, type) and issubclass(schema_class, AutoSchema)):
        return []
    return [
        Warning(
            "The management API's OpenAPI schema (/api/schema/, /api/docs/) needs drf-spectacular's AutoSchema.",
            hint="Set REST_FRAMEWORK['DEFAULT_SCHEMA_CLASS'] = 'drf_spectacular.openapi.AutoSchema': drf-spectacular "
            "reads it when the API's views are defined. Nothing else of the app's API depends on REST_FRAMEWORK.",
            id="objects.W001",
        )
    ]


ALL = (check_redis_url, check_sqlite_immediate, check_celery_app, check_templates, check_urls, check_schema_class)
