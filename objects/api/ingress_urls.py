"""URLs of the Restate-compatible ingress (mounted under OBJECTS_INGRESS_PREFIX)."""

urlpatterns: list = []
