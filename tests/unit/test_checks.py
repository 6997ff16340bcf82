"""The app's system checks (objects/checks.py, `manage.py check`) and the one Redis URL accessor they share with
the Redis clients (objects.conf.redis_url: OBJECTS_REDIS_URL, then REDIS_URL)."""

from __future__ import annotations

import asyncio
import weakref

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from objects import conf

SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}


def ids() -> list[str]:
    return sorted(message.id for message in run_checks(tags=["objects"]))


def test_the_projects_settings_pass():
    assert ids() == []


def test_the_redis_url_is_objects_redis_url_then_redis_url():
    with override_settings(OBJECTS_REDIS_URL="redis://objects:6379/3", REDIS_URL="redis://other:6379/0"):
        assert conf.redis_url() == "redis://objects:6379/3"
    with override_settings(OBJECTS_REDIS_URL="", REDIS_URL="redis://other:6379/0"):
        assert conf.redis_url() == "redis://other:6379/0"


def test_no_redis_url_is_e001():
    with override_settings(REDIS_URL=None):
        del settings.REDIS_URL
        with pytest.raises(ImproperlyConfigured, match="OBJECTS_REDIS_URL"):
            conf.redis_url()
        assert ids() == ["objects.E001"]


def test_the_redis_clients_read_objects_redis_url(monkeypatch):
    from objects.loop import signals
    from objects.signals import notify

    monkeypatch.setattr(notify, "_client", None)
    monkeypatch.setattr(signals, "_redis", weakref.WeakKeyDictionary())
    with override_settings(OBJECTS_REDIS_URL="redis://127.0.0.1:1/5"):
        assert notify.client().connection_pool.connection_kwargs["port"] == 1

        async def loop_client():
            return signals.client().connection_pool.connection_kwargs

        assert asyncio.run(loop_client())["db"] == 5
    monkeypatch.setattr(notify, "_client", None)


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_without_immediate_transactions_is_e002():
    with override_settings(DATABASES={"default": settings.DATABASES["default"], "side": SQLITE}):
        assert ids() == ["objects.E002"]
    immediate = {**SQLITE, "OPTIONS": {"transaction_mode": "IMMEDIATE"}}
    with override_settings(DATABASES={"default": settings.DATABASES["default"], "side": immediate}):
        assert ids() == []


def test_no_celery_app_set_up_for_the_app_is_e003(monkeypatch):
    import objects.celery

    monkeypatch.setattr(objects.celery, "_configured", weakref.WeakSet())
    assert ids() == ["objects.E003"]


def test_templates_out_of_reach_are_e004():
    engine = {**settings.TEMPLATES[0], "APP_DIRS": False, "DIRS": []}
    with override_settings(TEMPLATES=[engine]):
        assert ids() == ["objects.E004"]
    loaders = ["django.template.loaders.app_directories.Loader"]
    with override_settings(TEMPLATES=[{**engine, "OPTIONS": {**engine["OPTIONS"], "loaders": loaders}}]):
        assert ids() == []


def test_urls_not_included_are_e005():
    with override_settings(ROOT_URLCONF="tests.unit.urls_without_objects"):
        assert ids() == ["objects.E005"]
    assert ids() == []
