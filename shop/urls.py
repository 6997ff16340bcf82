"""URLs of the browser shop."""

urlpatterns: list = []
