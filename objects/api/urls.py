"""URLs of the management API (/api/: its root lists the resources), its OpenAPI schema (/api/schema/) and docs
(/api/docs/, /api/redoc/), included by objects.urls (namespace objects).

The docs pages load their bundles from the app's static files (objects/static/objects/apidocs/), never from the
internet, and send a visitor who is not signed in as staff to the admin's sign-in page."""

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.templatetags.static import static
from django.urls import NoReverseMatch, include, path, reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import exceptions, routers
from rest_framework.routers import DefaultRouter

from .base import AppAPIView
from .management import InstanceViewSet, InvocationViewSet, ObjectTypeViewSet
from .openapi import ObjectsSchemaGenerator


class APIRootView(AppAPIView, routers.APIRootView):
    """The management API's root: a link to each resource, for staff (401 without credentials, 403 otherwise)."""

    schema = None  # a list of links, not an operation


class SchemaView(AppAPIView, SpectacularAPIView):
    renderer_classes = SpectacularAPIView.renderer_classes
    schema = None  # not an operation of the API


def sign_in_url() -> str:
    try:
        return reverse("admin:login")
    except NoReverseMatch:  # a host without the admin
        return str(settings.LOGIN_URL)


class DocsPage:
    """An HTML page for people: without staff credentials, the admin's sign-in page (with `next=`), not a 401."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed, exceptions.PermissionDenied)):
            return redirect_to_login(self.request.get_full_path(), sign_in_url())  # type: ignore[attr-defined]
        return super().handle_exception(exc)  # type: ignore[misc]


class SwaggerView(DocsPage, AppAPIView, SpectacularSwaggerView):
    renderer_classes = SpectacularSwaggerView.renderer_classes
    schema = None  # not an operation of the API
    template_name = "objects/api/swagger_ui.html"

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"objects/apidocs/swagger-ui/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static("objects/apidocs/swagger-ui/favicon-32x32.png")


class RedocView(DocsPage, AppAPIView, SpectacularRedocView):
    renderer_classes = SpectacularRedocView.renderer_classes
    schema = None  # not an operation of the API
    template_name = "objects/api/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return static("objects/apidocs/redoc/redoc.standalone.js")


class Router(DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("types", ObjectTypeViewSet, basename="objects-type")
router.register("instances", InstanceViewSet, basename="objects-instance")
router.register("invocations", InvocationViewSet, basename="objects-invocation")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SchemaView.as_view(generator_class=ObjectsSchemaGenerator), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="objects:schema"), name="swagger-ui"),
    path("redoc/", RedocView.as_view(url_name="objects:schema"), name="redoc"),
]
