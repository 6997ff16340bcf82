"""Who may do what: management API and admin are staff-only, ingress access rules hold for other users' keys,
cookie-authenticated unsafe requests need a CSRF token, and view-only staff cannot change state."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from objects.models import Instance, Invocation, StateChange, StateEntry
from objects.services import state_edit

pytestmark = pytest.mark.django_db


def _snapshot() -> tuple:
    """Everything a request could change in the framework's tables."""
    return (
        list(Instance.objects.order_by("id").values_list("id", "version", "paused")),
        list(StateEntry.objects.order_by("id").values_list("id", "value")),
        list(Invocation.objects.order_by("id").values_list("id", "status")),
        StateChange.objects.count(),
    )


@pytest.fixture
def seeded(staff):
    """One instance with state and one invocation row, so every detail route has something to point at."""
    state_edit(type_name="Recorder", key="seed", expected_version=None, set_entries={"items": [1]})
    instance = Instance.objects.get(type_name="Recorder", key="seed")
    invocation = Invocation.objects.create(
        instance=instance, type_name="Recorder", key="seed", handler="append", kind="exclusive", input={"value": 2}
    )
    return instance, invocation


def _management_routes(staff, instance, invocation) -> list[tuple[str, str]]:
    """(method, path) of every management operation, from the OpenAPI schema, with real ids filled in."""
    client = Client()
    response = client.get("/api/schema/?format=json", **staff.auth)
    assert response.status_code == 200, response.content[:300]
    schema = json.loads(response.content)
    routes = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in operations:
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue

            def fill(match: re.Match, path: str = path) -> str:
                if path.startswith("/api/invocations/"):
                    return invocation.public_id
                if path.startswith("/api/instances/"):
                    return "items" if match.start() > len("/api/instances/{x}") else str(instance.pk)
                return "Recorder"

            routes.append((method.upper(), re.sub(r"\{([^}]+)\}", fill, path)))
    assert len(routes) >= 10, routes
    return routes


def _request(client: Client, method: str, path: str, **extra):
    body = json.dumps({"version": 1, "state": {"items": []}, "set": {"items": []}, "reason": "x"})
    return client.generic(method, path, body, content_type="application/json", HTTP_ACCEPT="application/json", **extra)


def test_every_management_endpoint_refuses_anonymous_and_non_staff(staff, alice, seeded):
    routes = _management_routes(staff, *seeded)
    before = _snapshot()
    client = Client()
    for method, path in routes:
        anonymous = _request(client, method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code, anonymous.content[:200])
        assert anonymous.content.strip(), (method, path, "401 without a message")
        user = _request(client, method, path, **alice.auth)
        assert user.status_code == 403, (method, path, user.status_code, user.content[:200])
    assert _snapshot() == before
    print(f"\nmanagement API: {len(routes)} operations refused to anonymous (401) and non-staff (403)")


def _admin_urls(instance, invocation) -> list[str]:
    urls = ["/admin/", reverse("admin:objects_overview")]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        pk = {Instance: instance.pk, Invocation: invocation.pk}.get(model)
        if pk is not None:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]))
    urls += [
        reverse("admin:objects_instance_entry_edit", args=[instance.pk]),
        reverse("admin:objects_instance_entry_delete", args=[instance.pk]),
    ]
    return urls


def test_every_admin_page_refuses_anonymous_and_non_staff(alice, seeded):
    urls = _admin_urls(*seeded)
    before = _snapshot()
    anonymous, user = Client(), Client()
    user.force_login(alice.user)
    for url in urls:
        for client in (anonymous, user):
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code in (302, 403), (url, method, response.status_code)
                if response.status_code == 302:
                    assert response["Location"].startswith("/admin/login/"), (url, response["Location"])
    assert _snapshot() == before
    print(f"\nadmin: {len(urls)} pages refused to anonymous and non-staff users (GET and POST)")


def test_view_only_staff_can_look_but_not_change_state(viewer, seeded):
    instance, invocation = seeded
    before = _snapshot()
    client = Client()
    client.force_login(viewer.user)
    assert client.get(reverse("admin:objects_instance_change", args=[instance.pk])).status_code == 200
    admin_posts = [
        (reverse("admin:objects_instance_entry_edit", args=[instance.pk]), {"name": "items", "value": "[]"}),
        (reverse("admin:objects_instance_entry_delete", args=[instance.pk]), {"name": "items"}),
        (
            reverse("admin:objects_instance_changelist"),
            {"action": "clear_all_state", "_selected_action": [instance.pk], "post": "yes"},
        ),
        (
            reverse("admin:objects_invocation_changelist"),
            {"action": "cancel_invocations", "_selected_action": [invocation.pk], "post": "yes"},
        ),
    ]
    for url, data in admin_posts:
        response = client.post(url, data)
        assert response.status_code in (200, 302, 403), (url, response.status_code)
    assert _snapshot() == before, "a view-only staff user changed state through the admin"

    api = Client()
    assert api.get(f"/api/instances/{instance.pk}/state/", **viewer.auth).status_code == 200
    writes = [
        ("PUT", f"/api/instances/{instance.pk}/state/", {"version": instance.version, "state": {"items": []}}),
        ("PATCH", f"/api/instances/{instance.pk}/state/", {"version": instance.version, "set": {"items": []}}),
        ("POST", f"/api/instances/{instance.pk}/clear/", {"version": instance.version}),
        ("POST", f"/api/instances/{instance.pk}/pause/", {"reason": "x"}),
        ("POST", f"/api/invocations/{invocation.public_id}/cancel/", {}),
    ]
    refused = []
    for method, path, body in writes:
        response = api.generic(method, path, json.dumps(body), content_type="application/json", **viewer.auth)
        refused.append((method, path, response.status_code))
    assert _snapshot() == before, f"a view-only staff user changed state through the API: {refused}"
    assert all(status == 403 for _, _, status in refused), refused


# -- ingress access rules ---------------------------------------------------------------------------------
def _call(client: Client, person, type_name: str, key: str, handler: str, body=None):
    path = f"/ingress/{type_name}/{quote(key, safe='')}/{handler}"
    return client.post(
        path,
        json.dumps(body) if body is not None else "",
        content_type="application/json",
        REQUEST_URI=path,  # as gunicorn's RAW_URI: the ingress splits the undecoded path (a key may hold "/")
        **person.auth,
    )


def test_ingress_rules_refuse_other_users_keys(alice, bob, staff):
    from counters.models import Tenant

    acme = Tenant.objects.create(slug="acme", name="Acme")
    acme.members.add(alice.user)
    globex = Tenant.objects.create(slug="globex", name="Globex")
    globex.members.add(bob.user)
    state_edit(type_name="Order", key="ord-bob-1", expected_version=None, set_entries={"user": "bob"})
    before = _snapshot()
    client = Client()
    refused = [
        ("Wallet", "bob", "balance", None),
        ("Wallet", "bob", "deposit", {"amount": 100, "tx_id": "steal-1"}),
        ("Wallet", "bob", "withdraw", {"amount": 100, "tx_id": "steal-2"}),
        ("Wallet", "alice", "receive", {"amount": 100, "tx_id": "self-credit", "from_key": "bob"}),
        ("ShoppingCart", "bob", "get_cart", None),
        ("ShoppingCart", "bob", "add_item", {"product_id": 1, "quantity": 1}),
        ("ShoppingCart", "alice", "merge", {"from_key": "bob"}),
        ("Order", "ord-bob-1", "status", None),
        ("Order", "ord-bob-1", "cancel", None),
        ("Counter", "globex/hits", "get", None),
        ("Counter", "globex/hits", "increment", {"by": 1}),
        ("Inventory", "SKU-1", "restock", {"quantity": 5}),
    ]
    from objects.registry import all_objects, get_object, staff_only

    default_rule = [o.name for o in all_objects() if o.access is staff_only]
    for name in default_rule:
        refused += [(name, "k", handler, None) for handler in sorted(get_object(name).handlers)]
    for type_name, key, handler, body in refused:
        response = _call(client, alice, type_name, key, handler, body)
        assert response.status_code == 403, (type_name, key, handler, response.status_code, response.content[:200])
        assert "may not call" in json.loads(response.content)["message"]
    assert _snapshot() == before, "a refused ingress request changed something"

    allowed = [
        ("Wallet", "alice", "balance"),
        ("ShoppingCart", "alice", "get_cart"),
        ("Counter", "acme/hits", "get"),
        ("Inventory", "SKU-1", "available"),
    ]
    for type_name, key, handler in allowed:
        response = _call(client, alice, type_name, key, handler)
        assert response.status_code == 200, (type_name, key, handler, response.status_code, response.content[:200])
    assert _call(client, bob, "Order", "ord-bob-1", "status").status_code != 403, "the owner may read the order"
    print(f"\ningress: {len(refused)} requests on other users' keys refused (403); default staff-only: {default_rule}")


def test_anonymous_ingress_request_needs_credentials():
    response = Client().post("/ingress/Recorder/k/append", json.dumps({"value": 1}), content_type="application/json")
    assert response.status_code == 401
    assert Invocation.objects.count() == 0


# -- CSRF --------------------------------------------------------------------------------------------
def test_session_authenticated_unsafe_requests_without_csrf_token_are_refused(alice, staff):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    staff_browser = Client(enforce_csrf_checks=True)
    staff_browser.force_login(staff.user)
    state_edit(type_name="Recorder", key="csrf", expected_version=None, set_entries={"items": [1]})
    instance = Instance.objects.get(key="csrf")
    before = _snapshot()
    attempts = [
        (browser, "/ingress/Recorder/alice/append", {"value": 1}),
        (browser, "/ingress/Wallet/alice/deposit", {"amount": 100, "tx_id": "csrf-1"}),
        (browser, "/ingress/ShoppingCart/alice/add_item", {"product_id": 1, "quantity": 1}),
        (staff_browser, f"/api/instances/{instance.pk}/clear/", {"version": instance.version}),
        (staff_browser, f"/api/instances/{instance.pk}/pause/", {"reason": "csrf"}),
    ]
    for client, path, body in attempts:
        response = client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code == 403, (path, response.status_code, response.content[:200])
        assert b"CSRF" in response.content, response.content[:200]
    for path in ("/cart/add/", "/wallet/top-up/", "/checkout/", "/admin/logout/"):
        response = browser.post(path, {"product_id": 1, "quantity": 1, "amount": 100})
        assert response.status_code == 403, (path, response.status_code)
    assert _snapshot() == before

    browser.get("/accounts/login/")
    token = browser.cookies.get("csrftoken")
    assert token is not None, "the login page sets a CSRF cookie"
    ok = browser.post(
        "/ingress/Recorder/alice/items", "", content_type="application/json", HTTP_X_CSRFTOKEN=token.value
    )
    assert ok.status_code == 200, ok.content[:200]
