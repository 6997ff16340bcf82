"""URLs of the Restate-compatible ingress (mounted under OBJECTS_INGRESS_PREFIX): one catch-all view."""

from django.urls import re_path

from .ingress import IngressView

urlpatterns = [re_path(r"^(?P<rest>[\s\S]*)\Z", IngressView.as_view(), name="objects-ingress")]
