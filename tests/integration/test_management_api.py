"""The management API (/api/): staff only, types with input schemas, instances, version-checked state edits,
invocations with filters and actions, pause/resume, the OpenAPI schema and docs, and a schemathesis run.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from objects.models import Instance, Invocation, StateChange, StateEntry, Status
from objects.services import invocation_submit, state_edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_user():
    return User.objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)


@pytest.fixture
def api(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


def instance_of(key: str) -> Instance:
    return Instance.objects.get(type_name="Recorder", key=key)


def test_without_credentials_is_401_and_a_non_staff_user_is_403():
    assert APIClient().get("/api/types/").status_code == 401
    client = APIClient()
    client.force_authenticate(User.objects.create_user("alice"))
    response = client.get("/api/invocations/")
    assert response.status_code == 403
    assert "staff" in response.json()["message"]


def test_types_list_handlers_kinds_and_input_schemas(api):
    body = api.get("/api/types/").json()
    recorder = next(t for t in body["results"] if t["name"] == "Recorder")
    handlers = {h["name"]: h for h in recorder["handlers"]}
    assert handlers["items"]["kind"] == "shared" and handlers["items"]["input_schema"] is None
    assert handlers["append"]["kind"] == "exclusive"
    assert handlers["append"]["input_schema"]["required"] == ["value"]
    assert "value" in handlers["append"]["input_schema"]["properties"]
    assert api.get("/api/types/Nope/").status_code == 404


def test_serializer_inputs_are_described_in_the_types_list_and_the_openapi_schema(api):
    from rest_framework import serializers

    from objects import ObjectContext, VirtualObject
    from objects.registry import unregister

    class Label(serializers.Serializer):
        label = serializers.CharField(max_length=10)

    obj = VirtualObject("Labeller")
    try:

        @obj.exclusive(input=Label)
        def relabel(ctx: ObjectContext, data: dict) -> str:
            return data["label"]

        described = api.get("/api/types/Labeller/").json()["handlers"][-1]
        assert described["name"] == "relabel"
        assert described["input_schema"]["properties"]["label"] == {"type": "string", "maxLength": 10}
        schema = api.get("/api/schema/?format=json").json()
        body = schema["paths"]["/ingress/Labeller/{key}/relabel"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Label"}
        assert schema["components"]["schemas"]["Label"]["properties"]["label"]["maxLength"] == 10
    finally:
        unregister("Labeller")


def test_instances_filter_by_type_and_key_prefix_and_sort_by_counts(api):
    state_edit(type_name="Recorder", key="cart-a", expected_version=None, set_entries={"a": 1, "b": 2})
    state_edit(type_name="Recorder", key="cart-b", expected_version=None, set_entries={"a": 1})
    state_edit(type_name="Recorder", key="other", expected_version=None, set_entries={"a": 1, "b": 2, "c": 3})
    for i in range(3):
        invocation_submit(type_name="Recorder", key="cart-b", handler="append", arg={"value": i})
    keys = [
        i["key"]
        for i in api.get("/api/instances/?type=Recorder&key_prefix=cart-&ordering=-entry_count").json()["results"]
    ]
    assert keys == ["cart-a", "cart-b"]
    rows = api.get("/api/instances/?type=Recorder&ordering=-inbox_depth").json()["results"]
    assert rows[0]["key"] == "cart-b" and rows[0]["inbox_depth"] == 3
    assert api.get("/api/instances/?ordering=bogus").status_code == 400


def test_a_format_suffix_no_renderer_has_is_404_not_500(api):
    """DRF reads `/api/instances/0.25/` as instance 0 in the format "25" and raises Django's Http404 for it: a 404
    in the API's shape, not an internal error."""
    response = api.get("/api/instances/0.25/")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Not found.", "source": "ingress"}


def test_validation_errors_name_the_fields(api):
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"a": 1})
    response = api.put(f"/api/instances/{instance_of('k').pk}/state/", {"state": {}}, format="json")
    assert response.json()["message"] == "version: This field is required."
    assert response.json()["errors"] == {"version": ["This field is required."]}
    misspelt = api.patch(f"/api/instances/{instance_of('k').pk}/state/", {"set": {"a": 2}}, format="json")
    assert misspelt.status_code == 400 and misspelt.json()["message"].startswith("set: Unknown field")


def test_state_replace_with_the_current_version_and_stale_version_is_409(api, staff_user):
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"items": [1]})
    instance = instance_of("k")
    state = api.get(f"/api/instances/{instance.pk}/state/").json()
    assert state == {"type": "Recorder", "key": "k", "version": 1, "state": {"items": [1]}}
    replaced = api.put(f"/api/instances/{instance.pk}/state/", {"version": 1, "state": {"x": "y"}}, format="json")
    assert replaced.json()["state"] == {"x": "y"} and replaced.json()["version"] == 2
    stale = api.put(f"/api/instances/{instance.pk}/state/", {"version": 1, "state": {}}, format="json")
    assert stale.status_code == 409 and "reload" in stale.json()["message"]
    assert dict(StateEntry.objects.filter(instance=instance).values_list("name", "value")) == {"x": "y"}
    assert StateChange.objects.filter(instance=instance, user=staff_user).exists()


def test_state_patch_sets_and_clears_entries_and_delete_clears_one_or_all(api):
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"a": 1, "b": 2, "c/d": 3})
    url = f"/api/instances/{instance_of('k').pk}/state/"
    patched = api.patch(url, {"entries": {"e": {"n": None}}, "clear": ["a"]}, format="json").json()
    assert patched["state"] == {"b": 2, "c/d": 3, "e": {"n": None}}
    assert api.delete(url + "c%2Fd/").json()["state"] == {"b": 2, "e": {"n": None}}
    assert api.delete(url + "?version=1").status_code == 409
    assert api.delete(url).json()["state"] == {}
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"a": 1})
    cleared = api.post(f"/api/instances/{instance_of('k').pk}/clear/", {}, format="json")
    assert cleared.json()["state"] == {}


@pytest.mark.parametrize(
    "body",
    [
        b'{"state": {}}',
        b'{"version": 0, "state": {"a": NaN}}',
        b'{"version": 0, "state": {"a": 1e999}}',
        b'{"version": 0, "state": {"a": "\\u0000"}}',
        b'{"version": 0, "state": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"version": "x", "state": []}',
        b"{",
    ],
)
def test_bad_state_bodies_are_400_and_change_nothing(api, body):
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"keep": True})
    url = f"/api/instances/{instance_of('k').pk}/state/"
    response = api.generic("PUT", url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == 400 and response.json()["message"]
    assert api.get(url).json()["state"] == {"keep": True}


def test_pause_and_resume_a_key(api):
    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"a": 1})
    pk = instance_of("k").pk
    paused = api.post(f"/api/instances/{pk}/pause/", {"reason": "maintenance"}, format="json").json()
    assert paused["paused"] is True and paused["paused_reason"] == "maintenance"
    assert api.post(f"/api/instances/{pk}/resume/").json()["paused"] is False


def test_invocations_filter_by_type_key_handler_status_and_time(api):
    first, _ = invocation_submit(type_name="Recorder", key="a", handler="append", arg={"value": 1})
    invocation_submit(type_name="Recorder", key="b", handler="hold", arg={})
    Invocation.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=2))

    def ids(query):
        response = api.get(f"/api/invocations/?{query}")
        assert response.status_code == 200, response.content
        return [row["key"] for row in response.json()["results"]]

    assert ids("type=Recorder") == ["b", "a"]
    assert ids("key=a") == ["a"] and ids("handler=hold") == ["b"]
    assert ids("status=pending") == ["b", "a"] and ids("status=failed") == []
    yesterday = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"created_after={yesterday}") == ["b"] and ids(f"created_before={yesterday}") == ["a"]
    assert api.get("/api/invocations/?status=nope").status_code == 400
    assert api.get("/api/invocations/?created_after=yesterday").status_code == 400


def test_invocation_detail_has_input_journal_and_caller(api):
    parent, _ = invocation_submit(type_name="Recorder", key="a", handler="append", arg={"value": 1})
    child, _ = invocation_submit(type_name="Recorder", key="b", handler="append", arg={"value": 2}, caller=parent)
    child.journal.create(index=0, name="charge", result={"ok": True})
    body = api.get(f"/api/invocations/{child.public_id}/").json()
    assert body["input"] == {"value": 2} and body["caller"] == parent.public_id
    assert body["journal"][0]["name"] == "charge" and body["status"] == "pending"
    assert api.get("/api/invocations/inv_nope/").status_code == 404


def test_cancel_kill_and_retry_actions(api):
    pending, _ = invocation_submit(type_name="Recorder", key="a", handler="append", arg={"value": 1})
    assert api.post(f"/api/invocations/{pending.public_id}/cancel/").json()["status"] == "cancelled"
    again = api.post(f"/api/invocations/{pending.public_id}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["message"]
    other, _ = invocation_submit(type_name="Recorder", key="b", handler="append", arg={"value": 1})
    assert api.post(f"/api/invocations/{other.public_id}/kill/").json()["status"] == "killed"
    failed, _ = invocation_submit(type_name="Recorder", key="c", handler="append", arg={"value": 1})
    Invocation.objects.filter(pk=failed.pk).update(status=Status.FAILED, attempts=3)
    assert api.post(f"/api/invocations/{failed.public_id}/retry/").json()["status"] == "pending"
    assert api.post(f"/api/invocations/{failed.public_id}/retry/").status_code == 409


def test_retry_refuses_a_handlers_refusal_with_409_like_the_admin(api):
    """A 4xx TerminalError is the handler's answer ("out of stock"); running it again gives the same answer."""
    refused, _ = invocation_submit(type_name="Recorder", key="r", handler="append", arg={"value": 1})
    Invocation.objects.filter(pk=refused.pk).update(
        status=Status.FAILED, error_code=409, error_type="TerminalError", error_message="Only 0 Poster left"
    )
    response = api.post(f"/api/invocations/{refused.public_id}/retry/")
    assert response.status_code == 409
    body = response.json()
    assert "its handler refused it (409: Only 0 Poster left)" in body["message"] and body["code"] == 409
    assert Invocation.objects.get(pk=refused.pk).status == Status.FAILED
    crashed, _ = invocation_submit(type_name="Recorder", key="s", handler="append", arg={"value": 1})
    Invocation.objects.filter(pk=crashed.pk).update(status=Status.FAILED, error_code=500, error_message="boom")
    assert api.post(f"/api/invocations/{crashed.public_id}/retry/").json()["status"] == "pending"


def test_schema_describes_management_and_ingress_with_handler_inputs(api):
    schema = api.get("/api/schema/?format=json").json()
    append = schema["paths"]["/ingress/Recorder/{key}/append"]["post"]
    body = append["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["value"]
    assert "/ingress/Recorder/{key}/append/send" in schema["paths"]
    assert "/ingress/restate/invocation/{id}/output" in schema["paths"]
    assert "put" in schema["paths"]["/api/instances/{id}/state/"]
    assert APIClient().get("/api/schema/").status_code == 401


def test_swagger_ui_is_served_from_local_static_files(api):
    page = api.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "/static/objects/apidocs/" in page
    assert "cdn" not in page.lower()
    import re

    from django.test import Client

    asset = re.search(r'/static/objects/apidocs/[^"]+\.js', page).group(0)
    served = Client().get(asset)
    assert served.status_code == 200 and b"".join(served.streaming_content)


# -- schemathesis: generated requests over every management operation ------------------------------


@pytest.fixture
def management_schema(api, staff_user):
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    # As Django's test client does: a real WSGI request would close the test's connection (its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    state_edit(type_name="Recorder", key="k", expected_version=None, set_entries={"a": 1})
    invocation_submit(type_name="Recorder", key="k", handler="append", arg={"value": 1})
    token = Token.objects.get(user=staff_user).key
    loaded = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers={"Authorization": f"Token {token}"}
    )
    yield loaded.include(path_regex="^/api/(types|instances|invocations)")
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_management_api_never_answers_5xx_and_matches_its_schema(management_schema, staff_user):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    headers = {"Authorization": f"Token {Token.objects.get(user=staff_user).key}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = [result.ok() for result in management_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def exercise(case):
            case.call_and_validate(headers=headers, checks=checks)

        exercise()
