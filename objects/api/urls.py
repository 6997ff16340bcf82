"""URLs of the management API (/api/: its root lists the resources), its OpenAPI schema (/api/schema/) and docs
(/api/docs/, /api/redoc/), included by objects.urls (namespace objects)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import routers
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


class SwaggerView(AppAPIView, SpectacularSwaggerView):
    renderer_classes = SpectacularSwaggerView.renderer_classes
    schema = None  # not an operation of the API


class RedocView(AppAPIView, SpectacularRedocView):
    renderer_classes = SpectacularRedocView.renderer_classes
    schema = None  # not an operation of the API


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
