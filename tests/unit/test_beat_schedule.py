"""celery beat takes the sweep interval from the Django settings (the environment or .env, read by
django-environ), like every other setting, not from the raw process environment."""

import subprocess
import sys
from pathlib import Path


def test_sweep_interval_comes_from_the_settings(tmp_path):
    (tmp_path / "sweep_settings.py").write_text("from config.settings import *  # noqa\nOBJECTS_SWEEP_INTERVAL = 2.5\n")
    code = (
        "import django; django.setup(); from config.celery import app; "
        "print(app.conf.beat_schedule['objects-sweep']['schedule'])"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{Path.cwd()}:{tmp_path}",
        "DJANGO_SETTINGS_MODULE": "sweep_settings",
        "SECRET_KEY": "x" * 50,
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=".", check=True)
    assert out.stdout.strip().splitlines()[-1] == "2.5"
