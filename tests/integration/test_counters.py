"""Counters: tenants' members only (rule and HTTP), exact sums under concurrency, listing (real workers)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from rest_framework.authtoken.models import Token

import objects
import objects.errors
from counters.models import Tenant
from counters.selectors import counters_of
from counters.virtual_objects import counter_access
from objects.models import Invocation

pytestmark = pytest.mark.workers


def _tenant(slug: str, *members: User) -> Tenant:
    tenant = Tenant.objects.create(slug=slug, name=slug.upper())
    tenant.members.add(*members)
    return tenant


@pytest.mark.django_db
def test_a_member_of_tenant_a_is_refused_on_tenant_b_counters_by_the_rule():
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    staff = User.objects.create_user("boss", is_staff=True)
    _tenant("acme", alice)
    _tenant("globex", bob)
    for handler in ("increment", "decrement", "reset", "get"):
        assert counter_access(alice, "acme/hits", handler)
        assert not counter_access(alice, "globex/hits", handler)
        assert not counter_access(AnonymousUser(), "acme/hits", handler)
    assert not counter_access(alice, "nosuchtenant/hits", "get")
    assert counter_access(staff, "globex/hits", "increment")
    assert counter_access(staff, "not-created-yet/hits", "increment")
    assert not counter_access(alice, "acme", "get")  # malformed: no "/<name>"
    assert not counter_access(alice, "/hits", "get")


def test_a_member_of_tenant_a_gets_403_on_tenant_b_counter_over_http(live_web):
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    _tenant("acme", alice)
    _tenant("globex", bob)
    auth = {"Authorization": f"Token {Token.objects.create(user=alice).key}"}

    def post(key: str, handler: str) -> requests.Response:
        url = f"{live_web.url}/ingress/Counter/{quote(key, safe='')}/{handler}"
        return requests.post(url, json={"by": 2}, headers=auth, timeout=30)

    refused = post("globex/hits", "increment")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == 403
    allowed = post("acme/hits", "increment")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == 2
    assert objects.call("Counter", "globex/hits", "get") == 0


def test_a_thousand_concurrent_increments_over_ten_counters_sum_exactly(live):
    from tests.support import wait_for

    def bump(i: int) -> None:
        try:
            objects.send("Counter", f"load/c{i % 10}", "increment", {"by": i % 3 + 1})
        finally:
            connections.close_all()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(bump, range(1000)))
    expected = {f"c{n}": sum(i % 3 + 1 for i in range(1000) if i % 10 == n) for n in range(10)}
    total = sum(expected.values())
    wait_for(lambda: sum(row["value"] for row in counters_of("load")) == total, timeout=120, interval=0.2)
    values = {n: objects.call("Counter", f"load/{n}", "get") for n in expected}
    assert values == expected
    assert counters_of("load") == [{"name": n, "value": v} for n, v in sorted(expected.items())]
    assert not Invocation.objects.filter(type_name="Counter", key__startswith="load/").exclude(status="succeeded")


def test_increment_decrement_reset_return_the_bare_value(live):
    assert objects.call("Counter", "t/x", "increment") == 1
    assert objects.call("Counter", "t/x", "increment", {"by": 5}) == 6
    assert objects.call("Counter", "t/x", "decrement", {"by": 10}) == -4
    assert objects.call("Counter", "t/x", "decrement") == -5
    assert objects.call("Counter", "t/x", "reset") == 0
    assert objects.call("Counter", "t/x", "get") == 0
    assert objects.call("Counter", "t/never", "get") == 0


def test_bad_steps_and_malformed_keys_are_400(live):
    for by in (0, 1_000_001, -1):
        with pytest.raises(objects.errors.ObjectsError) as info:
            objects.call("Counter", "t/x", "increment", {"by": by})
        assert info.value.status_code == 400
    for key in ("nokey", "/name", "tenant/"):
        with pytest.raises(objects.TerminalError) as info:
            objects.call("Counter", key, "increment")
        assert info.value.status_code == 400
        assert "<tenant>/<name>" in str(info.value)


def test_counters_of_lists_one_tenant_only(live):
    objects.call("Counter", "acme/a", "increment", {"by": 3})
    objects.call("Counter", "acme/b/c", "increment")
    objects.call("Counter", "acmex/a", "increment")
    assert counters_of("acme") == [{"name": "a", "value": 3}, {"name": "b/c", "value": 1}]
