"""Top-level URLs: the virtual objects app (ingress, management API and docs, health, metrics), admin, accounts,
shop."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

from objects.ratelimit import login_limited

urlpatterns = [
    path("", include("objects.urls")),
    # the sign-in forms, with OBJECTS_RATE_LIMIT_LOGIN on failed sign-ins (before the patterns they shadow)
    path("admin/login/", login_limited(admin.site.login)),
    path("accounts/login/", login_limited(LoginView.as_view()), name="login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("shop.urls")),
]
