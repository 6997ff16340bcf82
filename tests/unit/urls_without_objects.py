"""A host's URL configuration that forgot `path("", include("objects.urls"))` (tests/unit/test_checks.py)."""

urlpatterns: list = []
