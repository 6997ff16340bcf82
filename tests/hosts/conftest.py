"""Multi-host fixtures: the hosts (tests/hosts/cluster.py) built once for the module, the test process's
database pointed at the hosts' PostgreSQL while these tests run, and a staff token for the load."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import environ
import pytest

from tests.hosts.cluster import ROOT, Cluster, unavailable

BOUND = 10.0  # OBJECTS_HOST_LOSS_BOUND of every process on the hosts: a short one keeps the suite short


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = unavailable()
    if reason and "nft" in reason:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "ensure_netfilter.py")], check=False)
        reason = unavailable()
    if reason:
        pytest.skip(f"multi-host tests skipped: {reason}")
    hosts = Cluster(bound=BOUND)
    try:
        hosts.up()
        yield hosts
    finally:
        hosts.down()


@contextlib.contextmanager
def pointed_at(url: str) -> Iterator[None]:
    """The test process's default database is the hosts' PostgreSQL meanwhile (the settings dict is changed in
    place: every thread's connection reads it)."""
    from django.db import connections

    settings_dict = connections.settings["default"]
    saved = dict(settings_dict)
    parsed = environ.Env.db_url_config(url)
    connections.close_all()
    settings_dict.update({name: parsed[name] for name in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})
    try:
        yield
    finally:
        connections.close_all()
        settings_dict.clear()
        settings_dict.update(saved)


@pytest.fixture(scope="module")
def hosts_db(cluster: Cluster, django_db_blocker) -> Iterator[Cluster]:
    with django_db_blocker.unblock(), pointed_at(cluster.database_url):
        yield cluster


@pytest.fixture(scope="module")
def token(hosts_db: Cluster) -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("hosts-staff", password="x", is_staff=True)
    return Token.objects.create(user=user).key
