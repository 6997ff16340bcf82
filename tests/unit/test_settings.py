"""Settings defaults (django-environ) and the framework's lazily read settings."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from objects import conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def settings_in_subprocess(expr: str, **env: str) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "OBJECTS_PARTITIONS")
    }
    code = (
        f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); "
        f"from django.conf import settings as s; print({expr})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**clean, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_defaults_are_sqlite_under_var_with_wal_and_immediate_transactions():
    out = settings_in_subprocess(
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.DATABASES['default']['OPTIONS']"
    )
    assert "sqlite3" in out and "var/db.sqlite3" in out
    assert "'transaction_mode': 'IMMEDIATE'" in out and "journal_mode=WAL" in out


def test_defaults_debug_off_local_redis_eight_partitions():
    assert settings_in_subprocess("s.DEBUG, s.REDIS_URL, s.OBJECTS_PARTITIONS") == "False redis://127.0.0.1:6379/0 8"


def test_environment_overrides_database_redis_and_partitions():
    out = settings_in_subprocess(
        "s.DATABASES['default']['ENGINE'], s.REDIS_URL, s.OBJECTS_PARTITIONS, s.DEBUG",
        DATABASE_URL="postgres://u@db.example:5432/app",
        REDIS_URL="redis://r:1/2",
        OBJECTS_PARTITIONS="16",
        DEBUG="1",
    )
    assert out == "objects.backends.postgresql redis://r:1/2 16 True"


def test_conf_defaults_and_override(settings):
    assert conf.get("OBJECTS_RETRY_MAX_ATTEMPTS") == 10
    assert conf.get("OBJECTS_IDEMPOTENCY_RETENTION") == timedelta(hours=24)
    settings.OBJECTS_IDEMPOTENCY_RETENTION = 60
    assert conf.get("OBJECTS_IDEMPOTENCY_RETENTION") == timedelta(seconds=60)


def test_conf_bad_values_name_the_setting(settings):
    settings.OBJECTS_PARTITIONS = 0
    with pytest.raises(ImproperlyConfigured, match="OBJECTS_PARTITIONS must be a positive integer"):
        conf.get("OBJECTS_PARTITIONS")
    with pytest.raises(ImproperlyConfigured, match="valid ones: .*OBJECTS_BATCH_SIZE"):
        conf.get("OBJECTS_NOPE")
