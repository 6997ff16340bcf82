"""ASGI entry point, the production web process: `uvicorn config.asgi:application` (scripts/run.py, bench/run.py).

Token calls and sends are answered on the event loop, everything else by Django's WSGI handler on
OBJECTS_WEB_THREADS threads (objects.asgi.wrap, as docs/install.md shows a host).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi_application = get_wsgi_application()  # sets Django up

from objects.asgi import wrap  # noqa: E402 - needs Django set up

application = wrap(wsgi_application)
