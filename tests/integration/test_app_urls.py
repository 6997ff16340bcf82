"""The app's URLs come from one include, `path("", include("objects.urls"))`, in the namespace `objects`, and its
API views keep their own error shape, authentication, permissions, paging and schema whatever the host's
REST_FRAMEWORK settings say."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from objects.services import state_edit


def test_the_apps_urls_are_named_in_its_namespace():
    assert reverse("objects:healthz") == "/healthz"
    assert reverse("objects:metrics") == "/metrics"
    assert reverse("objects:schema") == "/api/schema/"
    assert reverse("objects:swagger-ui") == "/api/docs/"
    assert reverse("objects:objects-instance-list") == "/api/instances/"
    assert reverse("objects:objects-ingress", kwargs={"rest": "Recorder/k/items"}) == "/ingress/Recorder/k/items"


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


# drf-spectacular reads DEFAULT_SCHEMA_CLASS when its decorators run, so the schema page needs it (objects.W001)
SPECTACULAR = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
ALLOW_ANY = {
    **SPECTACULAR,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    "PAGE_SIZE": 1,
}


@pytest.mark.parametrize("rest_framework", [SPECTACULAR, ALLOW_ANY])
def test_a_hosts_rest_framework_settings_change_nothing(rest_framework, staff):
    for n in range(3):
        state_edit(type_name="Recorder", key=f"k{n}", expected_version=None, set_entries={"n": n})
    with override_settings(REST_FRAMEWORK=rest_framework):
        anonymous = Client().get("/api/instances/")
        assert anonymous.status_code == 401
        assert set(anonymous.json()) == {"code", "message", "source"}
        page = staff.get("/api/instances/?limit=2")
        assert page.status_code == 200 and page.json()["count"] == 3 and len(page.json()["results"]) == 2
        assert len(staff.get("/api/instances/").json()["results"]) == 3
        bad = staff.get("/api/instances/?paused=maybe")
        assert bad.status_code == 400 and bad.json()["message"] == "Query parameter paused must be true or false."
        assert staff.get("/api/instances/", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"
        assert staff.get("/api/instances/", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"
        schema = staff.get("/api/schema/?format=json")
        assert schema.status_code == 200 and "/api/instances/" in schema.json()["paths"]
        assert staff.get("/api/docs/").status_code == 200


def test_a_schema_class_drf_spectacular_cannot_use_is_w001():
    from django.core.checks import run_checks

    with override_settings(REST_FRAMEWORK={}):
        assert [m.id for m in run_checks(tags=["objects"])] == ["objects.W001"]
    with override_settings(REST_FRAMEWORK=SPECTACULAR):
        assert [m.id for m in run_checks(tags=["objects"])] == []
