"""An operator's watch, over real HTTP against uvicorn: staff who may view instances (`objects.view_instance`, what
the admin's instance page needs) watch any key, a type without a shared handler included; everyone else, staff
without that permission too, keeps the type's rule (a shared handler's access)."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.integration.test_watch import call, streams, token_for  # noqa: F401  # streams: a fixture

pytestmark = pytest.mark.workers

NO_WATCH = "Object type 'HistoryCart' has no handler 'watch'; its handlers: add_item, add_to."


def staff_user(username: str, *, may_view: bool = True):
    user = get_user_model().objects.create_user(username, is_staff=True)
    if may_view:
        user.user_permissions.add(Permission.objects.get(codename="view_instance", content_type__app_label="objects"))
    return user


def session_of(user) -> dict[str, str]:
    """The session cookie of a signed-in browser (the admin's)."""
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def token_of(user) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def test_staff_who_may_view_instances_watch_a_type_without_a_shared_handler(live_web, streams):  # noqa: F811
    shopper = token_for("shopper")
    call(live_web.url, "HistoryCart/h1/add_item", "first", shopper)
    operator = staff_user("operator")
    for auth in (session_of(operator), token_of(operator)):
        stream = streams(live_web.url, "HistoryCart/h1/watch", auth)
        assert stream.response.status_code == 200
        assert stream.next_event()["state"] == {"items": ["first"]}
    watched = streams(live_web.url, "HistoryCart/h1/watch", session_of(operator))
    seen = watched.next_event()
    call(live_web.url, "HistoryCart/h1/add_item", "second", shopper)
    changed = watched.next_event(timeout=2)
    assert changed["state"] == {"items": ["first", "second"]} and changed["version"] == seen["version"] + 1


def test_everyone_else_keeps_the_types_rule(live_web, streams):  # noqa: F811
    token_for("alice")
    shopper = token_for("shopper")
    for auth in (shopper, session_of(staff_user("viewless", may_view=False))):
        refused = httpx.get(f"{live_web.url}/ingress/HistoryCart/h2/watch", headers=auth, timeout=10)
        assert refused.status_code == 404 and refused.json()["message"] == NO_WATCH
    viewless = token_of(get_user_model().objects.get(username="viewless"))
    other = httpx.get(f"{live_web.url}/ingress/ShoppingCart/alice/watch", headers=viewless, timeout=10)
    assert other.status_code == 403 and other.json()["message"] == (
        "viewless may not call ShoppingCart.get_cart on key 'alice'."
    )
    anonymous = httpx.get(f"{live_web.url}/ingress/HistoryCart/h2/watch", timeout=10)
    assert anonymous.status_code == 401
    operator = session_of(staff_user("operator"))
    assert streams(live_web.url, "ShoppingCart/alice/watch", operator).response.status_code == 200
    bad_key = httpx.get(f"{live_web.url}/ingress/HistoryCart/{'k' * 300}/watch", headers=operator, timeout=10)
    assert bad_key.status_code == 400 and set(bad_key.json()) >= {"code", "message"}


@pytest.mark.django_db
def test_the_threads_decide_the_same_without_the_event_loop():
    operator = Client()
    operator.force_login(staff_user("operator"))
    response = operator.get("/ingress/HistoryCart/h3/watch")
    assert response.status_code == 501  # allowed: only the stream needs the loop
    shopper = Client()
    shopper.force_login(get_user_model().objects.create_user("shopper"))
    refused = shopper.get("/ingress/HistoryCart/h3/watch")
    assert refused.status_code == 404 and refused.json()["message"] == NO_WATCH
