"""URLs of the management API (/api/: its root lists the resources), its OpenAPI schema (/api/schema/) and docs
(/api/docs/, /api/redoc/)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import routers
from rest_framework.routers import DefaultRouter

from .management import InstanceViewSet, InvocationViewSet, ObjectTypeViewSet
from .openapi import ObjectsSchemaGenerator
from .permissions import AUTHENTICATION_CLASSES, IsStaff


class APIRootView(routers.APIRootView):
    """The management API's root: a link to each resource, for staff (401 without credentials, 403 otherwise)."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsStaff]
    schema = None  # a list of links, not an operation


class Router(DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("types", ObjectTypeViewSet, basename="objects-type")
router.register("instances", InstanceViewSet, basename="objects-instance")
router.register("invocations", InvocationViewSet, basename="objects-invocation")

docs = {"authentication_classes": AUTHENTICATION_CLASSES, "permission_classes": [IsStaff]}

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(generator_class=ObjectsSchemaGenerator, **docs), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", **docs), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", **docs), name="redoc"),
]
