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

