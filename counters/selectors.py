"""Reads about tenants and their counters (from the Counter objects' committed state)."""

from __future__ import annotations

from typing import Any

import objects

from .models import Tenant


def tenant_is_member(*, user: Any, slug: str) -> bool:
    return bool(user.is_authenticated) and Tenant.objects.filter(slug=slug, members=user).exists()


def counters_of(tenant_slug: str) -> list[dict[str, Any]]:
    """The counters of a tenant, by name: [{"name", "value"}] (never-written ones are absent)."""
    prefix = f"{tenant_slug}/"
    keys = [key for key in objects.instance_keys("Counter", prefix=prefix) if key != prefix]
    values = objects.state_values("Counter", keys, "value")
    rows = [{"name": key.removeprefix(prefix), "value": values.get(key, 0)} for key in keys]
    return sorted(rows, key=lambda row: row["name"])
