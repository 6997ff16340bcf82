"""The ingress with real workers: exclusive calls, idempotent calls, attach/output, terminal errors, cancel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from objects.models import Invocation, Status
from objects.services import invocation_cancel

pytestmark = pytest.mark.workers


@pytest.fixture
def auth(live):
    user = User.objects.create_user("carol")
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def post(path, body=b"", **extra):
    full = f"/ingress/{path}"
    return Client().generic("POST", full, body, content_type="application/json", RAW_URI=full, **extra)


def test_exclusive_call_waits_for_the_worker_and_answers_its_output(auth):
    response = post("Recorder/a%2Fb/append", b'{"value": 7}', **auth)
    assert response.status_code == 200 and response.content == b"1"
    invocation = Invocation.objects.get(uid=response["x-restate-id"][4:])
    assert invocation.status == Status.SUCCEEDED and invocation.key == "a/b"


def test_idempotent_call_runs_once_and_repeats_the_stored_output(auth):
    first = post("Recorder/idem/append", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="k1", **auth)
    again = post("Recorder/idem/append", b'{"value": 1}', HTTP_IDEMPOTENCY_KEY="k1", **auth)
    assert first.content == again.content == b"1"
    assert first["x-restate-id"] == again["x-restate-id"]
    assert post("Recorder/idem/items", **auth).json() == [1]


def test_terminal_error_of_an_exclusive_handler_is_its_status_from_the_invocation(auth):
    response = post("Recorder/live-refusal/refuse", b'{"message": "out of stock", "status": 409}', **auth)
    assert response.status_code == 409
    assert response.json()["message"] == "out of stock" and response.json()["source"] == "invocation"
    assert response["x-restate-error-source"] == "invocation"


def test_attach_and_output_answer_like_the_call(auth):
    sent = post("Recorder/att/append/send", b'{"value": 3}', HTTP_IDEMPOTENCY_KEY="s1", **auth).json()
    attached = Client().get(f"/ingress/restate/invocation/{sent['invocationId']}/attach", **auth)
    assert attached.status_code == 200 and attached.content == b"1"
    output = Client().get(f"/ingress/restate/invocation/{sent['invocationId']}/output", **auth)
    assert output.content == b"1"
    by_key = Client().get("/ingress/restate/invocation/Recorder/att/append/s1/output", **auth)
    assert by_key.content == b"1" and by_key["x-restate-id"] == sent["invocationId"]


def test_attach_to_a_cancelled_invocation_is_409(auth):
    sent = post("Recorder/c/append/send?delay=1h", b'{"value": 3}', **auth).json()
    invocation_cancel(invocation=Invocation.objects.get(uid=sent["invocationId"][4:]))
    response = Client().get(f"/ingress/restate/invocation/{sent['invocationId']}/attach", **auth)
    assert response.status_code == 409 and response["x-restate-error-source"] == "invocation"
