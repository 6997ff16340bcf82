"""Who called: `ctx.principal` (the signed-in user an invocation runs for, from the ingress, carried through
ctx.call and ctx.send) and `ctx.caller` (the object that called or sent), on both of the web process's paths
over real HTTP: with a query string the threads answer (objects/asgi.py takes no request with one), without
it the event loop does, once the token is in the process's cache. Also the row, the management API, the
admin, `objects.call`/`objects.send` with `principal=`, and the order history built on them."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

import objects
from objects import Caller, Principal, SharedObjectContext
from objects.models import Invocation, StateEntry, Status
from tests.security.conftest import RawHTTP

pytestmark = pytest.mark.workers

SIDES = {"threads": "?via=threads", "loop": ""}


class Person:
    def __init__(self, username: str, **flags) -> None:
        self.user = User.objects.create_user(username, **flags)
        self.header = {"Authorization": f"Token {Token.objects.create(user=self.user).key}"}
        self.principal = {"id": self.user.pk, "username": username}


@pytest.fixture
def http(live_web) -> RawHTTP:
    return RawHTTP(live_web.url)


@pytest.fixture
def alice(live_web) -> Person:
    return Person("alice")


def post(http: RawHTTP, path: str, person: Person, body: object = None, side: str = "loop"):
    data = b"" if body is None else json.dumps(body).encode()
    return http.request("POST", path + SIDES[side], data, person.header)


def both(http: RawHTTP, path: str, person: Person, body: object = None) -> dict:
    """The threads first (they put the token in the process's cache), then the event loop."""
    return {side: post(http, path, person, body, side) for side in SIDES}


def row(public_id: str) -> Invocation:
    return Invocation.objects.get(uid=public_id[4:])


def finished(**filters) -> Invocation:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = Invocation.objects.filter(**filters, status=Status.SUCCEEDED).first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no finished invocation {filters}")


def test_a_call_runs_for_the_signed_in_user_on_both_paths(http, alice):
    for side, response in both(http, "/ingress/Whoami/k/who", alice).items():
        assert response.status == 200, (side, response.body[:300])
        assert response.json() == {"caller": None, "principal": alice.principal}, side
        invocation = row(response.headers["x-restate-id"])
        assert invocation.principal == alice.principal, side
        assert (invocation.caller_type, invocation.caller_key) == ("", ""), side


def test_a_send_records_the_signed_in_user_on_both_paths(http, alice):
    for side, response in both(http, "/ingress/Whoami/s/who/send", alice).items():
        assert response.status == 202, (side, response.body[:300])
        assert row(response.json()["invocationId"]).principal == alice.principal, side
    finished(key="s", handler="who")


def test_a_shared_call_sees_the_signed_in_user_on_both_paths(http, alice):
    for side, response in both(http, "/ingress/Whoami/r/peek", alice).items():
        assert response.status == 200, (side, response.body[:300])
        assert response.json() == {"caller": None, "principal": alice.principal}, side


def test_sends_that_arrive_together_keep_each_senders_user(http, live_web):
    """Sends of two users at once on the event loop: the loop inserts those that arrive while its previous
    statement runs with one statement (store.inserts.fresh_group_sql); each row keeps its own sender."""
    people = [Person("gina"), Person("hugo")]
    for person in people:
        assert post(http, "/ingress/Whoami/g/who/send", person, side="threads").status == 202  # caches the token
    with ThreadPoolExecutor(16) as pool:
        sent = list(pool.map(lambda n: (n % 2, post(http, "/ingress/Whoami/g/who/send", people[n % 2])), range(32)))
    for index, response in sent:
        assert response.status == 202, response.body[:300]
        assert row(response.json()["invocationId"]).principal == people[index].principal
    assert Invocation.objects.filter(key="g").count() == 34


@pytest.mark.parametrize("shared", [False, True])
def test_a_callee_sees_its_caller_and_the_same_user(http, alice, shared):
    for side, response in both(http, "/ingress/Whoami/a/relay", alice, {"key": "b", "shared": shared}).items():
        assert response.status == 200, (side, response.body[:300])
        assert response.json() == {"caller": ["Whoami", "a"], "principal": alice.principal}, side
    if not shared:
        callee = Invocation.objects.filter(key="b", handler="who").first()
        assert callee.principal == alice.principal
        assert (callee.caller_type, callee.caller_key) == ("Whoami", "a")


def test_a_sent_invocation_carries_the_user_and_its_caller(http, alice):
    for side in SIDES:
        response = post(http, "/ingress/Whoami/a2/relay_send", alice, {"key": f"b2-{side}"}, side)
        assert response.status == 200, (side, response.body[:300])
        callee = finished(key=f"b2-{side}", handler="who")
        assert callee.principal == alice.principal and (callee.caller_type, callee.caller_key) == ("Whoami", "a2")
        seen = StateEntry.objects.get(instance__key=f"b2-{side}", name="seen").value
        assert seen == {"caller": ["Whoami", "a2"], "principal": alice.principal}, side


def test_python_callers_name_the_principal_or_none(live):
    olga = User.objects.create_user("olga")
    assert objects.call("Whoami", "p", "who") == {"caller": None, "principal": None}
    expected = {"caller": None, "principal": {"id": olga.pk, "username": "olga"}}
    assert objects.call("Whoami", "p", "who", principal=olga) == expected
    assert objects.call("Whoami", "p", "peek", principal=olga) == expected
    service = Principal(id="svc-1", username="nightly-job")
    assert objects.call("Whoami", "p", "who", principal=service)["principal"] == {
        "id": "svc-1",
        "username": "nightly-job",
    }
    sent = objects.send("Whoami", "p2", "who", principal=olga)
    assert row(sent).principal == expected["principal"]
    with pytest.raises(TypeError, match="principal"):
        objects.send("Whoami", "p2", "who", principal="olga")


def test_the_context_tells_who_but_cannot_be_changed():
    ctx = SharedObjectContext("k", None, "inv_x", caller=Caller("Cart", "alice"), principal=Principal(1, "alice"))
    assert (ctx.caller, ctx.principal) == (Caller("Cart", "alice"), Principal(1, "alice"))
    for name in ("caller", "principal"):
        with pytest.raises(AttributeError):
            setattr(ctx, name, None)
    with pytest.raises(AttributeError):
        ctx.principal.username = "mallory"  # type: ignore[misc]


def test_the_management_api_and_the_admin_show_who(http, alice):
    response = post(http, "/ingress/Whoami/m/relay", alice, {"key": "m2"}, "threads")
    assert response.status == 200, response.body[:300]
    callee = Invocation.objects.get(key="m2", handler="who")
    staff = User.objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    detail = client.get(f"/api/invocations/{callee.public_id}/").json()
    assert detail["principal"] == alice.principal
    assert detail["caller_object"] == {"type": "Whoami", "key": "m"}
    page = client.get(f"/admin/objects/invocation/{callee.pk}/change/").content.decode()
    assert f"alice (id {alice.user.pk})" in page and "Whoami/m" in page
    listing = client.get("/admin/objects/invocation/").content.decode()
    assert "alice" in listing


# -- the order history: who, from the principal and the caller ---------------------------------------------
LINES = [{"sku": "MUG", "name": "Mug", "unit_price_cents": 250, "quantity": 2, "line_total_cents": 500}]


def test_the_order_history_records_who_cancelled_from_the_principal(http, alice):
    objects.call("Order", "ord_p", "create", {"user": "alice", "lines": LINES, "total_cents": 500})
    refused = post(http, "/ingress/Order/ord_p/cancel", alice, {"by": "mallory"})
    assert refused.status == 400, refused.body[:300]  # who cancels is not the caller's to say
    for side in SIDES:
        objects.call("Order", f"ord_p{side}", "create", {"user": "alice", "lines": LINES, "total_cents": 500})
        response = post(http, f"/ingress/Order/ord_p{side}/cancel", alice, side=side)
        assert response.status == 200, (side, response.body[:300])
        assert response.json()["history"][-1]["by"] == "alice", side
    staff = User.objects.create_user("packer", is_staff=True)
    objects.call("Order", "ord_q", "create", {"user": "alice", "lines": LINES, "total_cents": 500})
    objects.call("Order", "ord_q", "pay", {"tx_id": "t"}, principal=staff)
    order = objects.call("Order", "ord_q", "ship")
    assert [step["by"] for step in order["history"]] == [None, "packer", None]
