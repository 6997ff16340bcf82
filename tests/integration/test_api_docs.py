"""The management API's docs pages: served from the app's own static files (nothing from the internet), sending a
visitor without staff credentials to the admin's sign-in page; the schema's operations carry their own
descriptions only."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db
PAGES = ("/api/docs/", "/api/redoc/")
STRAY = "Shared settings of every management view"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw", is_staff=True))
    return client


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_sign_in_with_next(page):
    response = Client().get(page)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={page}"


@pytest.mark.parametrize("page", PAGES)
def test_a_signed_in_non_staff_user_is_sent_to_sign_in_too(page):
    client = Client()
    client.force_login(User.objects.create_user("shopper", password="pw"))
    assert client.get(page)["Location"].startswith("/admin/login/?next=")


def test_the_schema_stays_an_api_answer_for_anonymous_callers():
    assert Client().get("/api/schema/").status_code == 401


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_reference_only_same_origin_assets_that_are_served(staff, page):
    body = staff.get(page).content.decode()
    references = re.findall(r'(?:src|href)="([^"]*)"', body) + re.findall(r"url\(([^)]*)\)", body)
    assert references
    for url in references:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another origin"
    assert "fonts.googleapis" not in body and "cdn." not in body
    scripts = re.findall(r'<script src="([^"]+)"', body)
    assert scripts and all(s.startswith("/static/objects/apidocs/") for s in scripts)
    for asset in scripts:
        served = Client().get(asset)
        assert served.status_code == 200 and b"".join(served.streaming_content), asset


def test_the_vendored_bundles_fetch_nothing_from_the_internet_themselves():
    from pathlib import Path

    import objects

    bundles = Path(objects.__file__).parent / "static" / "objects" / "apidocs"
    redoc = (bundles / "redoc" / "redoc.standalone.js").read_text()
    assert "cdn.redoc.ly" not in redoc and "fonts.googleapis" not in redoc
    assert "sourceMappingURL=redoc.standalone.js.map" not in redoc


def test_no_operation_carries_a_base_class_docstring(staff):
    assert STRAY not in staff.get("/api/schema/").content.decode()  # YAML, as the docs pages read it
    schema = staff.get("/api/schema/?format=json").json()
    operations = [op for methods in schema["paths"].values() for op in methods.values() if isinstance(op, dict)]
    described = [op.get("description", "") for op in operations]
    assert not [d for d in described if STRAY in d]
    assert not [d for d in described if "The base (or first base" in d]
