"""Top-level URLs: shop, accounts, admin, management API and docs, ingress, health."""

from django.contrib import admin
from django.urls import include, path

from objects.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("objects.api.urls")),
]
