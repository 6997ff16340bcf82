"""Who may do what, over real HTTP against the web server: browser sessions on the ingress (with the CSRF token,
refused without it before anything else), the management API's root, deposits, staff permissions on other
users' keys, anonymous sends and delays. Token calls and sends are made twice where the path matters: once with
a query string (the threads answer it: objects/asgi.py takes no request with one) and once without it, right
after, while the token is in the process's cache (the event loop answers it)."""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote

import pytest
from django.test import Client

from objects.models import Instance, Invocation

from .conftest import Person, RawHTTP, RawResponse

pytestmark = pytest.mark.workers


def _target(path: str, threads: bool) -> str:
    if not threads:
        return path
    return path + ("&" if "?" in path else "?") + "via=threads"


def both(
    http: RawHTTP, path: str, body: object = None, person: Person | None = None, headers: dict | None = None
) -> list[RawResponse]:
    """The same POST through the threads, then on the event loop (the token is cached by the first)."""
    data = b"" if body is None else json.dumps(body).encode()
    all_headers = {**(person.header if person else {}), **(headers or {})}
    return [http.request("POST", _target(path, threads), data, all_headers) for threads in (True, False)]


def _rows() -> tuple[int, int]:
    return Instance.objects.count(), Invocation.objects.count()


# -- browser sessions on the ingress ---------------------------------------------------------------------
@pytest.fixture
def browser(live_web, alice) -> dict[str, str]:
    """A signed-in browser's cookies (session and CSRF) and the CSRF header that goes with them."""
    from django.conf import settings

    client = Client()
    client.force_login(alice.user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = secrets.token_hex(16)  # 32 characters: a CSRF secret as Django's cookie holds it
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "X-CSRFToken": csrf,
    }


def test_a_browser_session_calls_the_ingress_with_its_csrf_token(raw_http, browser):
    sent = raw_http.request("POST", "/ingress/Recorder/alice/append", b'{"value": 5}', browser)
    assert sent.status == 200, sent.body[:300]
    assert sent.json() == 1
    read = raw_http.request("POST", "/ingress/Recorder/alice/items", b"", browser)
    assert read.status == 200 and read.json() == [5], read.body[:300]
    queued = raw_http.request("POST", "/ingress/Recorder/alice/append/send", b'{"value": 6}', browser)
    assert queued.status == 202, queued.body[:300]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/ingress/Recorder/alice/append", b'{"value": 5}'),
        ("POST", "/ingress/NoSuchType/alice/append", b'{"value": 5}'),
        ("POST", "/ingress/Recorder/alice/no_such_handler", b"{}"),
        ("POST", "/ingress/Recorder/" + quote("x" * 300) + "/append", b'{"value": 5}'),
        ("POST", "/ingress/Recorder/alice/append", b'{"value": '),
        ("POST", "/ingress/Recorder/alice/append", b"[" * 2_000_000),
        ("POST", "/ingress/Recorder/alice/append/send?delay=nonsense", b'{"value": 5}'),
        ("POST", "/ingress/Wallet/bob/withdraw", b'{"amount": 1, "tx_id": "t"}'),
    ],
)
def test_a_browser_session_without_the_csrf_token_is_refused_before_anything_else(
    raw_http, browser, method, path, body
):
    cookie_only = {"Cookie": browser["Cookie"]}
    before = _rows()
    response = raw_http.request(method, path, body, cookie_only)
    assert response.status == 403, (path, response.status, response.body[:300])
    error = response.json()
    assert "CSRF" in error["message"] and error["source"] == "ingress", error
    assert _rows() == before


# -- the management API's root ---------------------------------------------------------------------------
def test_the_api_root_lists_the_resources_for_staff_only(raw_http, staff, alice, viewer):
    listed = raw_http.request("GET", "/api/", headers={**staff.header, "Accept": "application/json"})
    assert listed.status == 200, listed.body[:300]
    resources = listed.json()
    assert set(resources) == {"types", "instances", "invocations"}, resources
    assert resources["types"].endswith("/api/types/"), resources
    assert raw_http.request("GET", "/api/", headers=viewer.header).status == 200, "view-only staff may look"
    anonymous = raw_http.request("GET", "/api/")
    assert anonymous.status == 401 and anonymous.json()["message"], anonymous.body[:300]
    assert anonymous.headers.get("www-authenticate", "").startswith("Token")
    refused = raw_http.request("GET", "/api/", headers=alice.header)
    assert refused.status == 403 and "staff" in refused.json()["message"], refused.body[:300]


# -- staff on other users' keys: the permission the request needs ----------------------------------------
@pytest.fixture
def bare_staff(live_web) -> Person:
    """Staff without any permission."""
    from .conftest import _person

    return _person("bare-staff", is_staff=True)


@pytest.fixture
def changer(live_web) -> Person:
    """Staff with the view permissions of the objects app and objects.change_instance, not a superuser."""
    from django.contrib.auth.models import Permission

    from .conftest import _person

    person = _person("changer", is_staff=True)
    person.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="objects").filter(
            codename__in=["view_instance", "view_invocation", "change_instance"]
        )
    )
    return person


def test_staff_act_on_other_users_keys_only_with_the_matching_permission(
    raw_http, staff, viewer, bare_staff, changer, bob
):
    from counters.models import Tenant
    from objects.services import state_edit

    Tenant.objects.create(slug="globex", name="Globex").members.add(bob.user)
    state_edit(
        type_name="Order", key="ord-bob-9", expected_version=None, set_entries={"user": "bob", "status": "created"}
    )
    state_edit(type_name="Wallet", key="bob", expected_version=None, set_entries={"balance": 500})

    def statuses(person: Person, path: str, body: object = None) -> list[int]:
        return [r.status for r in both(raw_http, path, body, person)]

    before = _rows()
    writes = [
        ("/ingress/Wallet/bob/withdraw", {"amount": 100, "tx_id": "w-1"}),
        ("/ingress/Wallet/bob/balance/send", None),  # a send writes a row: change, whatever the handler's kind
        ("/ingress/Inventory/SKU-9/restock", {"quantity": 5}),
        ("/ingress/ShoppingCart/bob/add_item", {"sku": "SKU-9", "quantity": 1}),
        ("/ingress/Order/ord-bob-9/cancel", None),
        ("/ingress/Counter/globex%2Fhits/increment", {"by": 1}),
    ]
    reads = [
        ("/ingress/Wallet/bob/balance", None),
        ("/ingress/Order/ord-bob-9/status", None),
        ("/ingress/Counter/globex%2Fhits/get", None),
    ]
    for path, body in writes:
        assert statuses(viewer, path, body) == [403, 403], f"view-only staff wrote: {path}"
        assert statuses(bare_staff, path, body) == [403, 403], f"staff without permissions wrote: {path}"
    for path, body in reads:
        assert statuses(bare_staff, path, body) == [403, 403], f"staff without permissions read: {path}"
    assert _rows() == before, "a refused request wrote something"
    refused = both(raw_http, "/ingress/Wallet/bob/withdraw", {"amount": 1, "tx_id": "w-2"}, viewer)
    assert "viewer may not call Wallet.withdraw" in refused[1].json()["message"], refused[1].body
    for path, body in reads:
        assert statuses(viewer, path, body) == [200, 200], f"view-only staff may read: {path}"

    assert statuses(viewer, "/ingress/Wallet/viewer/withdraw", {"amount": 1, "tx_id": "own"}) == [409, 409], (
        "their own wallet is theirs: insufficient funds, not refused"
    )
    assert statuses(changer, "/ingress/Wallet/bob/balance") == [200, 200]
    assert statuses(changer, "/ingress/Inventory/SKU-9/restock", {"quantity": 5}) == [200, 200]
    taken = both(raw_http, "/ingress/Wallet/bob/withdraw", {"amount": 100, "tx_id": "w-3"}, changer)
    assert [r.status for r in taken] == [200, 200], taken[1].body  # the same tx_id: the second is its repeat
    assert statuses(staff, "/ingress/Wallet/bob/withdraw", {"amount": 100, "tx_id": "w-4"}) == [200, 200]


# -- deposits: staff, other objects, the demo top-up -----------------------------------------------------
def _balance(username: str) -> int:
    import objects

    return objects.call("Wallet", username, "balance")["balance"]


def test_a_user_cannot_deposit_into_a_wallet_over_http(raw_http, alice, viewer, changer):
    before = _rows()
    attempts = [
        ("deposit", {"amount": 100_000_000, "tx_id": "mint-1"}),
        ("top_up", {"amount": 5000, "tx_id": "mint-2", "daily_cap": 100_000_000}),
    ]
    for handler, body in attempts:
        refused = both(raw_http, f"/ingress/Wallet/alice/{handler}", body, alice)
        assert [r.status for r in refused] == [403, 403], (handler, refused[0].body, refused[1].body)
        assert "alice may not call Wallet." in refused[1].json()["message"]
    sent = both(raw_http, "/ingress/Wallet/alice/deposit/send", {"amount": 5, "tx_id": "mint-3"}, alice)
    assert [r.status for r in sent] == [403, 403]
    refused = both(raw_http, "/ingress/Wallet/alice/deposit", {"amount": 5, "tx_id": "mint-4"}, viewer)
    assert [r.status for r in refused] == [403, 403], "view-only staff deposited"
    assert _rows() == before and _balance("alice") == 0

    paid = both(raw_http, "/ingress/Wallet/alice/deposit", {"amount": 700, "tx_id": "goodwill-1"}, changer)
    assert [r.status for r in paid] == [200, 200], paid[1].body  # the second is the first's repeat (same tx_id)
    assert _balance("alice") == 700


def test_an_order_cancelled_by_its_owner_is_refunded_by_the_order(raw_http, alice):
    """A refund is a deposit made by another object (Order.cancel calls Wallet.deposit): it still works."""
    import objects

    objects.call("Wallet", "alice", "deposit", {"amount": 1000, "tx_id": "server-side"})
    objects.call("Inventory", "MUG", "restock", {"quantity": 5})
    objects.call("Inventory", "MUG", "reserve", {"order_id": "ord_r", "quantity": 2})
    objects.call("Wallet", "alice", "withdraw", {"amount": 600, "tx_id": "pay-ord_r"})
    line = {"sku": "MUG", "name": "Mug", "unit_price_cents": 300, "quantity": 2, "line_total_cents": 600}
    objects.call("Order", "ord_r", "create", {"user": "alice", "lines": [line], "total_cents": 600})
    objects.call("Order", "ord_r", "pay", {"tx_id": "pay-ord_r"})
    assert _balance("alice") == 400
    cancelled = raw_http.request("POST", "/ingress/Order/ord_r/cancel", b"", alice.header)
    assert cancelled.status == 200 and cancelled.json()["status"] == "cancelled", cancelled.body[:300]
    assert _balance("alice") == 1000


def _browser_for(person: Person) -> dict[str, str]:
    from django.conf import settings

    client = Client()
    client.force_login(person.user)
    csrf = secrets.token_hex(16)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "X-CSRFToken": csrf,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_the_demo_top_up_is_off_by_default(raw_http, alice):
    browser = _browser_for(alice)
    page = raw_http.request("GET", "/wallet/", headers=browser)
    assert page.status == 200 and b"/wallet/top-up/" not in page.body
    form = f"amount=5000&token={secrets.token_hex(16)}".encode()
    response = raw_http.request("POST", "/wallet/top-up/", form, browser)
    assert response.status == 404, response.status
    assert _balance("alice") == 0


def test_the_demo_top_up_is_capped_per_day(live, alice, settings):
    settings.SHOP_DEMO_TOPUP = True
    settings.SHOP_DEMO_TOPUP_DAILY_CENTS = 6000
    client = Client()
    client.force_login(alice.user)
    assert b"/wallet/top-up/" in client.get("/wallet/").content
    tokens = [secrets.token_hex(16) for _ in range(4)]
    for token in tokens[:2]:
        client.post("/wallet/top-up/", {"amount": 2500, "token": token})
    client.post("/wallet/top-up/", {"amount": 2500, "token": tokens[0]})  # a repeat: counted once
    assert _balance("alice") == 5000
    refused = client.post("/wallet/top-up/", {"amount": 2500, "token": tokens[2]}, follow=True)
    assert "$10.00 left today" in refused.content.decode(), refused.content.decode()[-2000:]
    assert _balance("alice") == 5000
    client.post("/wallet/top-up/", {"amount": 1000, "token": tokens[3]})
    assert _balance("alice") == 6000


# -- sends and delays: a signed-in caller, a bounded delay, idle rows swept -------------------------------
def test_anonymous_clients_cannot_send(raw_http):
    before = _rows()
    for path in (
        f"/ingress/Inventory/{secrets.token_hex(8)}/available/send?delay=365d",
        f"/ingress/Inventory/{secrets.token_hex(8)}/available/send",
        f"/ingress/Inventory/{secrets.token_hex(8)}/available/send?delay=10s",
    ):
        for response in both(raw_http, path):
            assert response.status == 401, (path, response.status, response.body[:300])
            assert "Sign in to send" in response.json()["message"], response.body
            assert response.headers.get("www-authenticate", "").startswith("Token")
    assert _rows() == before, "an anonymous send left rows"
    read = raw_http.request("POST", "/ingress/Inventory/SKU-1/available", b"")
    assert read.status == 200, "an anonymous call to a handler its rule opens still works"


def test_delays_are_bounded_by_objects_max_delay(raw_http, alice):
    before = _rows()
    for delay in ("31d", "P31D", "2678400001", "745h"):
        path = f"/ingress/Recorder/alice/append/send?delay={delay}"
        for response in both(raw_http, path, {"value": 1}, alice):
            assert response.status == 400, (delay, response.status, response.body[:300])
            assert "at most 30 days" in response.json()["message"], response.body
    assert _rows() == before
    accepted = raw_http.request("POST", "/ingress/Recorder/alice/append/send?delay=30d", b'{"value": 1}', alice.header)
    assert accepted.status == 202, accepted.body[:300]

    sent = raw_http.request(
        "POST",
        "/ingress/Chain/alice/send_then",
        json.dumps({"target": "t", "value": 1, "delay": 31 * 86400}).encode(),
        alice.header,
    )
    assert sent.status == 400 and "at most 30 days" in sent.json()["message"], sent.body[:300]
    assert sent.json()["source"] == "invocation"


def test_objects_send_refuses_a_delay_over_the_bound(db, settings):
    from datetime import timedelta

    import objects
    from objects.errors import InvalidInput

    with pytest.raises(InvalidInput, match="at most 30 days"):
        objects.send("Recorder", "k", "append", {"value": 1}, delay=timedelta(days=30, seconds=1))
    settings.OBJECTS_MAX_DELAY = timedelta(hours=1)
    with pytest.raises(InvalidInput, match="at most 1 hour"):
        objects.send("Recorder", "k", "append", {"value": 1}, delay=timedelta(hours=2))
    assert _rows() == (0, 0)


def test_the_sweeper_removes_idle_instance_rows_in_bounded_batches(db):
    """A key row with nothing in it (no state, no invocation of any status, no history, not paused) and older
    than an hour is deleted by the sweeper, oldest first, at most `limit` per sweep; everything else stays."""
    from datetime import timedelta

    from django.utils import timezone

    from objects.models import StateChange, StateEntry
    from objects.worker.sweeper import delete_idle_instances, sweep

    now = timezone.now()

    def key(name: str, age: timedelta = timedelta(hours=2), **fields) -> Instance:
        instance = Instance.objects.create(type_name="Recorder", key=name, **fields)
        Instance.objects.filter(pk=instance.pk).update(created_at=now - age)
        return instance

    idle = [key(f"idle-{n}", age=timedelta(hours=5 - n)) for n in range(3)]  # idle-0 the oldest
    key("young", age=timedelta(minutes=10))
    key("recently-changed", changed_at=now - timedelta(minutes=5))
    key("paused", paused=True)
    StateEntry.objects.create(instance=key("with-state"), name="items", value=[1])
    for status in ("pending", "running", "backing_off", "succeeded", "failed"):
        instance = key(f"with-{status}")
        Invocation.objects.create(
            instance=instance,
            type_name="Recorder",
            key=instance.key,
            handler="append",
            kind="exclusive",
            status=status,
        )
    StateChange.objects.create(instance=key("with-history"), name="items", action="clear", version=1)
    kept = set(Instance.objects.values_list("key", flat=True)) - {i.key for i in idle}

    assert delete_idle_instances(now, limit=2) == 2
    assert not Instance.objects.filter(key__in=["idle-0", "idle-1"]).exists(), "the oldest go first"
    assert sweep()["instances_deleted"] == 1
    assert set(Instance.objects.values_list("key", flat=True)) == kept
    assert sweep()["instances_deleted"] == 0
