"""docs/install.md, followed by a stranger: the wheel alone installed in a fresh virtualenv, a new project
from `django-admin startproject`, the page's steps applied as it shows them, an object of the project's own
called over HTTP, read with `manage.py objects state get` and seen in the admin."""

from __future__ import annotations

import asyncio

import httpx
from django.core.handlers.asgi import ASGIHandler
from django.core.wsgi import get_wsgi_application

from objects.asgi import Application, wrap


def test_wrap_serves_djangos_wsgi_or_asgi_handler_on_its_threads():
    """`objects.asgi.wrap` takes what a project's asgi.py has: Django's WSGI handler, or its ASGI handler, which
    is replaced by the WSGI one (the threads run Django as WSGI; given the ASGI handler they would fail)."""

    async def fetch(application: Application) -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get("/no-such-page/")

    for django_app in (get_wsgi_application(), ASGIHandler()):
        application = wrap(django_app, threads=2)
        assert isinstance(application, Application)
        response = asyncio.run(fetch(application))
        assert response.status_code == 404, response.text[:300]
