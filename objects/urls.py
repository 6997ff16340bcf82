"""The app's URLs, mounted at the host's root: `path("", include("objects.urls"))`. Names live in the namespace
`objects`: the ingress under OBJECTS_INGRESS_PREFIX, the management API with its schema and docs under api/,
healthz and metrics."""

from django.urls import include, path

from objects import conf
from objects.health import healthz
from objects.metrics import metrics_view

app_name = "objects"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/", include("objects.api.urls")),
    path(f"{conf.get('OBJECTS_INGRESS_PREFIX').strip('/')}/", include("objects.api.ingress_urls")),
]
