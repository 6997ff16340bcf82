"""GET /healthz: the state of the database, Redis and the workers; 200 when all are up, 503 naming what is down.
Why a part is down (the client's error text: hosts, ports, users) is shown to signed-in staff only."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse

from .signals import notify
from .store.sql import PING_SQL
from .worker.heartbeat import live_workers

log = logging.getLogger("objects.health")


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute(PING_SQL)
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the message says why
        return {"ok": False, "error": str(exc).strip()[:300]}


def _redis() -> dict[str, Any]:
    try:
        notify.client().ping()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)[:300]}


def _workers() -> dict[str, Any]:
    try:
        names = live_workers()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)[:300]}
    if not names:
        return {"ok": False, "error": "no Celery worker has sent a heartbeat in the last few seconds", "workers": []}
    return {"ok": True, "workers": names}


HIDDEN = "unavailable"  # the error of a part that is down, for anyone but staff


def _staff(request: HttpRequest) -> bool:
    try:
        return bool(request.user.is_active and request.user.is_staff)
    except Exception:  # noqa: BLE001 - the session's database is down: not known to be staff
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "redis": _redis()}
    checks["workers"] = _workers() if checks["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    down = [name for name, check in checks.items() if not check["ok"]]
    for name in down:  # why, for the operator: the answer shows it to staff only
        log.warning("healthz: %s down: %s", name, checks[name].get("error"))
    if down and not _staff(request):
        checks = {name: {**check, "error": HIDDEN} if "error" in check else check for name, check in checks.items()}
    body = {"status": "ok" if not down else "down", "down": down, **checks}
    return JsonResponse(body, status=200 if not down else 503)
