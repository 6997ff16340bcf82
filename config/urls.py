"""Top-level URLs: shop, accounts, admin, management API and docs, ingress, health."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from objects.health import healthz
from objects.metrics import metrics_view

INGRESS_PREFIX = getattr(settings, "OBJECTS_INGRESS_PREFIX", "ingress").strip("/")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("objects.api.urls")),
    path(f"{INGRESS_PREFIX}/", include("objects.api.ingress_urls")),
    path("", include("shop.urls")),
]
