"""The ingress over Django's test client: status codes, error shape, key encoding, access rules, sends.

Shared handlers run in-process and sends only write rows, so no worker is needed here; exclusive calls
and attach are in test_ingress_live.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework import serializers
from rest_framework.authtoken.models import Token

from objects import SharedObjectContext, TerminalError, VirtualObject
from objects.models import Invocation
from objects.registry import unregister

pytestmark = pytest.mark.django_db


def probe_rule(user, key: str, handler: str) -> bool:
    if key.startswith("anon:"):
        return key == f"anon:{getattr(user, 'session_key', None)}"
    if key == "public":
        return True
    return user.is_authenticated and (user.is_staff or user.get_username() == key)


@dataclass
class Point:
    x: int
    y: int


class LabelSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=10)


@pytest.fixture(autouse=True)
def probe():
    obj = VirtualObject("Probe", access=probe_rule)

    @obj.shared
    def echo_key(ctx: SharedObjectContext) -> str:
        return ctx.key

    @obj.shared
    def nothing(ctx: SharedObjectContext) -> None:
        return None

    @obj.shared
    def add(ctx: SharedObjectContext, p: Point) -> int:
        return p.x + p.y

    @obj.shared(input=LabelSerializer)
    def label(ctx: SharedObjectContext, data: dict) -> dict:
        return {"label": data["label"]}

    @obj.shared
    def refuse(ctx: SharedObjectContext) -> None:
        raise TerminalError("teapot says no", 418)

    @obj.shared
    def crash(ctx: SharedObjectContext) -> None:
        raise RuntimeError("bug")

    yield obj
    unregister("Probe")


@pytest.fixture
def staff():
    """An operator who may change any key (access rules see staff as staff only with the permission needed)."""
    user = User.objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)
    return user, {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def alice():
    user = User.objects.create_user("alice", password="pw")
    return user, {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def post(client, path, body=b"", **extra):
    full = f"/ingress/{path}"
    return client.generic("POST", full, body, content_type="application/json", RAW_URI=full, **extra)


def error_of(response, status, source="ingress"):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == status and body["source"] == source
    assert response["x-restate-error-source"] == source
    return body["message"]


def test_call_answers_raw_json_output_with_an_invocation_id(alice):
    response = post(Client(), "Probe/alice/add", b'{"x": 2, "y": 3}', **alice[1])
    assert response.status_code == 200
    assert response.content == b"5"
    assert response["Content-Type"] == "application/json"
    assert response["x-restate-id"].startswith("inv_")


def test_none_output_is_an_empty_body_without_json_content_type(alice):
    response = post(Client(), "Probe/alice/nothing", **alice[1])
    assert response.status_code == 200
    assert response.content == b""
    assert not response.has_header("Content-Type")


@pytest.mark.parametrize("key", ["a/b", "a b", "ключ", "%", "50%25", "a+b", "q?x#y", "..", "k/send"])
def test_percent_encoded_keys_arrive_exactly(staff, key):
    response = post(Client(), f"Probe/{quote(key, safe='')}/echo_key", **staff[1])
    assert response.status_code == 200, response.content
    assert json.loads(response.content) == key


def test_key_is_decoded_from_the_django_path_without_a_raw_uri(staff):
    response = Client().post(
        "/ingress/Probe/%D0%BA%D0%BB%D1%8E%D1%87/echo_key", b"", content_type="application/json", **staff[1]
    )
    assert response.json() == "ключ"


def test_invalid_utf8_in_a_key_is_400(staff):
    assert "UTF-8" in error_of(post(Client(), "Probe/%FF%FE/echo_key", **staff[1]), 400)


@pytest.mark.parametrize("key", ["bad%01key", "x" * 256])
def test_invalid_keys_are_400_with_the_rule(staff, key):
    message = error_of(post(Client(), f"Probe/{key}/echo_key", **staff[1]), 400)
    assert "1 to 255 characters" in message


def test_empty_key_dropped_by_the_client_is_400_with_the_rule(staff):
    assert "1 to 255 characters" in error_of(post(Client(), "Probe/echo_key", **staff[1]), 400)


def test_unknown_path_shape_is_400(staff):
    assert "Bad path" in error_of(post(Client(), "Probe/k/echo_key/extra/more", **staff[1]), 400)


def test_no_input_handler_accepts_an_empty_json_body(staff):
    assert post(Client(), "Probe/k/echo_key", b"", **staff[1]).json() == "k"


def test_no_input_handler_refuses_a_body(staff):
    assert "takes no input" in error_of(post(Client(), "Probe/k/echo_key", b'{"a": 1}', **staff[1]), 400)


def test_without_credentials_a_signed_in_only_type_is_401():
    response = post(Client(), "Probe/alice/echo_key")
    error_of(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")


def test_without_credentials_an_unknown_type_is_401_not_a_list_of_types():
    assert "Probe" not in error_of(post(Client(), "Nope/k/h"), 401)


def test_a_bad_token_is_401():
    error_of(post(Client(), "Probe/public/echo_key", HTTP_AUTHORIZATION="Token nope"), 401)


def test_unknown_type_is_404_listing_known_types(alice):
    message = error_of(post(Client(), "Nope/alice/x", **alice[1]), 404)
    assert "'Nope'" in message and "Probe" in message


def test_unknown_handler_is_404_listing_the_handlers(alice):
    message = error_of(post(Client(), "Probe/alice/nope", **alice[1]), 404)
    assert "'nope'" in message and "echo_key" in message


def test_anonymous_caller_reaches_a_public_key_and_gets_404_for_a_missing_handler():
    assert post(Client(), "Probe/public/echo_key").json() == "public"
    error_of(post(Client(), "Probe/public/nope"), 404)


def test_someone_elses_key_is_403_with_a_message(alice):
    message = error_of(post(Client(), "Probe/bob/echo_key", **alice[1]), 403)
    assert "alice may not call Probe.echo_key" in message


def test_session_login_with_csrf_token_calls_and_without_is_403(alice):
    from django.middleware.csrf import _get_new_csrf_string

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice[0])
    assert "CSRF" in error_of(post(client, "Probe/alice/echo_key"), 403)
    client.cookies["csrftoken"] = csrf = _get_new_csrf_string()
    assert post(client, "Probe/alice/echo_key", HTTP_X_CSRFTOKEN=csrf).json() == "alice"


def _anonymous_session_client() -> tuple[Client, str, str]:
    from django.middleware.csrf import _get_new_csrf_string

    client = Client(enforce_csrf_checks=True)
    session = client.session
    session["cart"] = 1
    session.save()
    client.cookies["sessionid"] = session.session_key
    client.cookies["csrftoken"] = csrf = _get_new_csrf_string()
    return client, session.session_key, csrf


def test_anonymous_session_reaches_its_own_anon_key_only():
    client, session_key, csrf = _anonymous_session_client()
    response = post(client, f"Probe/anon:{session_key}/echo_key", HTTP_X_CSRFTOKEN=csrf)
    assert response.json() == f"anon:{session_key}"
    error_of(post(client, "Probe/anon:someone-else/echo_key", HTTP_X_CSRFTOKEN=csrf), 401)


def test_anonymous_session_key_is_withheld_without_the_csrf_token():
    client, session_key, _ = _anonymous_session_client()
    error_of(post(client, f"Probe/anon:{session_key}/echo_key"), 401)


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"x": 1,', "Malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"x": ' + b"[" * 70 + b"]" * 70 + b', "y": 1}', "nested deeper"),
        (b'{"x": NaN, "y": 1}', "Malformed JSON"),
        (b'{"x": 1e999, "y": 1}', "out of range"),
        (b'{"x": ' + b"9" * 5000 + b', "y": 1}', "Malformed JSON"),
        (b'{"x": 99999999999999999999, "y": 1}', "out of range"),
        (b'{"x": "one", "y": 1}', "x"),
        (b'{"x": 1}', "y"),
        (b'{"x": 1, "y": 2, "z": 3}', "unknown field"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"x": 1, "y": "\\u0000"}', "NUL"),
        (b'{"x": 1, "y": "\\ud800"}', "surrogate"),
        (b'{"x": 1, "y": "\xff"}', "UTF-8"),
    ],
)
def test_bad_input_is_400_with_a_reason(staff, body, fragment):
    assert fragment in error_of(post(Client(), "Probe/k/add", body, **staff[1]), 400)


def test_serializer_field_errors_are_in_the_message(staff):
    message = error_of(post(Client(), "Probe/k/label", b'{"label": "far too long a label"}', **staff[1]), 400)
    assert "label:" in message


@override_settings(OBJECTS_MAX_BODY_BYTES=100)
def test_body_over_the_limit_is_413(staff):
    error_of(post(Client(), "Probe/k/add", b'{"x": 1, "y": 2, "pad": "' + b"p" * 200 + b'"}', **staff[1]), 413)


def test_other_methods_on_a_call_path_are_405_with_allow(staff):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = Client().generic(method, "/ingress/Probe/k/echo_key", **staff[1])
        error_of(response, 405)
        assert response["Allow"] == "POST"


def test_post_on_attach_is_405(staff):
    response = post(Client(), "restate/invocation/inv_00/attach", **staff[1])
    error_of(response, 405)
    assert response["Allow"] == "GET"


def test_health_needs_no_credentials():
    response = Client().get("/ingress/restate/health")
    assert response.status_code == 200


def test_terminal_error_keeps_its_status_and_is_marked_as_the_invocations(staff):
    assert error_of(post(Client(), "Probe/k/refuse", **staff[1]), 418, source="invocation") == "teapot says no"


def test_handler_bug_is_500_from_the_invocation_without_internals(staff):
    message = error_of(post(Client(), "Probe/k/crash", **staff[1]), 500, source="invocation")
    assert "RuntimeError" in message and "bug" not in message


@override_settings(OBJECTS_CALL_TIMEOUT=0.2)
def test_call_that_outlasts_the_timeout_is_504_carrying_the_invocation_id(alice):
    # Inside this test's transaction the accepted row is never committed, so no worker can finish it.
    response = post(Client(), "Recorder/k/append", b'{"value": 1}', **alice[1])
    invocation = Invocation.objects.get()
    assert error_of(response, 504).startswith(f"Invocation {invocation.public_id} did not finish")
    assert response.json()["invocationId"] == response["x-restate-id"] == invocation.public_id


def test_delay_on_a_call_is_400(staff):
    assert "delay" in error_of(post(Client(), "Probe/k/echo_key?delay=10s", **staff[1]), 400)


# -- sends: rows only (the doorbell rings after commit, which these transactional tests never reach) --


def test_send_is_202_accepted_with_an_id(alice):
    response = post(Client(), "Recorder/k/append/send", b'{"value": 1}', **alice[1])
    assert response.status_code == 202
    body = response.json()
    assert body == {"invocationId": response["x-restate-id"], "status": "Accepted"}
    assert Invocation.objects.get(uid=body["invocationId"][4:]).input == {"value": 1}


@pytest.mark.parametrize("delay, seconds", [("500ms", 0.5), ("10s", 10), ("PT1M", 60), ("1500", 1.5), ("1m", 60)])
def test_delayed_send_reports_its_execution_time(alice, delay, seconds):
    response = post(Client(), f"Recorder/k/append/send?delay={delay}", b'{"value": 1}', **alice[1])
    body = response.json()
    invocation = Invocation.objects.get(uid=body["invocationId"][4:])
    assert abs((invocation.not_before - invocation.created_at).total_seconds() - seconds) < 1
    assert body["executionTime"].endswith("Z")


def test_delay_zero_means_now(alice):
    body = post(Client(), "Recorder/k/append/send?delay=0", b'{"value": 1}', **alice[1]).json()
    assert "executionTime" not in body
    assert Invocation.objects.get(uid=body["invocationId"][4:]).not_before is None


@pytest.mark.parametrize("delay", ["-5s", "soon", "1e3", ""])
def test_bad_or_negative_delay_is_400_and_accepts_nothing(alice, delay):
    error_of(post(Client(), f"Recorder/k/append/send?delay={delay}", b'{"value": 1}', **alice[1]), 400)
    assert not Invocation.objects.exists()


def test_repeated_idempotency_key_is_previously_accepted(alice):
    first = post(Client(), "Recorder/k/append/send", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="once", **alice[1])
    again = post(Client(), "Recorder/k/append/send", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="once", **alice[1])
    assert first.json()["status"] == "Accepted"
    assert again.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}
    assert Invocation.objects.count() == 1


def test_idempotency_key_reused_with_another_input_is_409(alice):
    post(Client(), "Recorder/k/append/send", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="once", **alice[1])
    response = post(Client(), "Recorder/k/append/send", b'{"value": 2}', HTTP_IDEMPOTENCY_KEY="once", **alice[1])
    assert "another input" in error_of(response, 409)


def test_idempotency_key_with_control_characters_is_400(alice):
    response = post(Client(), "Recorder/k/append/send", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="a\x00b", **alice[1])
    assert "idempotency key" in error_of(response, 400)
    assert not Invocation.objects.exists()


def test_output_of_an_unfinished_invocation_is_470(alice):
    invocation_id = post(Client(), "Recorder/k/append/send", b'{"value": 1}', **alice[1]).json()["invocationId"]
    response = Client().get(f"/ingress/restate/invocation/{invocation_id}/output", **alice[1])
    assert error_of(response, 470)


def test_attach_to_an_unknown_invocation_is_404(alice):
    error_of(Client().get(f"/ingress/restate/invocation/inv_{'0' * 32}/attach", **alice[1]), 404)


def test_attach_to_someone_elses_invocation_is_404_like_an_unknown_one(alice, staff):
    invocation_id = post(Client(), "Probe/k/add/send", b'{"x": 1, "y": 2}', **staff[1]).json()["invocationId"]
    message = error_of(Client().get(f"/ingress/restate/invocation/{invocation_id}/output", **alice[1]), 404)
    assert message == f"No invocation {invocation_id!r}."


def test_output_by_idempotency_key_of_an_unknown_request_is_404(alice):
    error_of(Client().get("/ingress/restate/invocation/Recorder/k/append/nokey/output", **alice[1]), 404)
