"""Production settings: `manage.py check --deploy` is clean, and a missing SECRET_KEY stops startup."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "HTTPS": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_SSL_REDIRECT": "1",
    "ALLOWED_HOSTS": "example.com",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "OBJECTS_TEST_OBJECTS")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY_FILE": str(ROOT / "var" / "none"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*(-_=+)"
    key = "".join(secrets.choice(alphabet) for _ in range(50))
    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=key, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout


def test_a_secret_key_that_starts_with_a_dollar_sign_is_taken_as_it_is():
    """Django's own generator draws "$" too; django-environ reads a leading "$" as a reference to another
    variable, which left the key empty and stopped startup one time in fifty."""
    key = "$" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(49))
    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=key, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = _manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", SECRET_KEY=key, **PRODUCTION
    )
    assert shown.stdout.strip().splitlines()[-1] == key, shown.stdout + shown.stderr


def test_check_deploy_flags_the_development_defaults():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="1")
    assert result.returncode != 0
    for warning in ("security.W018", "security.W009"):  # DEBUG on, an insecure SECRET_KEY
        assert warning in result.stdout + result.stderr, result.stdout + result.stderr


def test_startup_without_secret_key_fails_when_it_is_required():
    result = _manage("check", **PRODUCTION)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY is required" in result.stderr, result.stderr
