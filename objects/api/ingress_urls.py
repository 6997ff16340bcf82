"""URLs of the Restate-compatible ingress (mounted under OBJECTS_INGRESS_PREFIX): one catch-all view.

Token calls reach the same view from objects.middleware.IngressShortcutMiddleware, without the resolver.
"""

from django.urls import re_path

from .ingress import IngressView

ingress_view = IngressView.as_view()

urlpatterns = [re_path(r"^(?P<rest>[\s\S]*)\Z", ingress_view, name="objects-ingress")]
