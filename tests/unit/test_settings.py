"""Settings defaults (django-environ) and the framework's lazily read settings."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from objects import conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SETTINGS_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "ALLOWED_HOSTS",
    "OBJECTS_PARTITIONS",
)
NO_KEY_FILE = os.path.join(ROOT, "var", "no-such-secret-key-file")


def settings_run(expr: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a new interpreter with `env` over the test run's environment (without the
    variables above), print `expr`."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    code = (
        f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); "
        f"from django.conf import settings as s; print({expr})"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**clean, **env})


def settings_in_subprocess(expr: str, **env: str) -> str:
    out = settings_run(expr, **{"SECRET_KEY": "k" * 50, **env})
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


def test_debug_off_without_a_secret_key_refuses_to_start():
    out = settings_run("s.SECRET_KEY", SECRET_KEY_FILE=NO_KEY_FILE)
    assert out.returncode != 0, out.stdout
    assert "ImproperlyConfigured" in out.stderr and "SECRET_KEY is required" in out.stderr, out.stderr
    for hint in ("SECRET_KEY_FILE", "DEBUG=1", "make run"):  # what to set
        assert hint in out.stderr, out.stderr


def test_the_secret_key_comes_from_the_environment_or_its_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("f" * 50 + "\n")
    assert settings_in_subprocess("s.SECRET_KEY", SECRET_KEY="", SECRET_KEY_FILE=str(key_file)) == "f" * 50
    assert settings_in_subprocess("s.SECRET_KEY", SECRET_KEY="e" * 50, SECRET_KEY_FILE=str(key_file)) == "e" * 50


def test_debug_on_without_a_key_uses_a_development_key_check_deploy_flags():
    key = settings_in_subprocess("s.SECRET_KEY", SECRET_KEY="", SECRET_KEY_FILE=NO_KEY_FILE, DEBUG="1")
    assert key.startswith("django-insecure-")


def test_make_run_makes_a_secret_key_once(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from run import secret_key_file

    key_file = tmp_path / "var" / "secret_key"
    assert secret_key_file(key_file) == key_file
    key = key_file.read_text().strip()
    assert len(key) >= 50 and not key.startswith("django-insecure")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secret_key_file(key_file) == key_file and key_file.read_text().strip() == key  # kept
