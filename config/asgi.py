"""ASGI entry point, the production web process: `uvicorn config.asgi:application` (scripts/run.py, bench/run.py).

Token calls and sends are answered on the event loop, everything else by Django's WSGI handler on
OBJECTS_WEB_THREADS threads (objects/asgi.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi_application = get_wsgi_application()  # sets Django up

from objects import conf  # noqa: E402
from objects.asgi import Application  # noqa: E402

application = Application(wsgi_application, threads=conf.get("OBJECTS_WEB_THREADS"))
