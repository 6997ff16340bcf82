"""URLs of the management API (/api/)."""

urlpatterns: list = []
