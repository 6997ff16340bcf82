"""Reads about tenants and their counters (from the Counter objects' state rows)."""

from __future__ import annotations

from typing import Any

from objects.models import Instance, StateEntry

from .models import Tenant


def tenant_is_member(*, user: Any, slug: str) -> bool:
    return bool(user.is_authenticated) and Tenant.objects.filter(slug=slug, members=user).exists()


def counters_of(tenant_slug: str) -> list[dict[str, Any]]:
    """The counters of a tenant, by name: [{"name", "value"}] (never-written ones are absent)."""
    prefix = f"{tenant_slug}/"
    keys = dict(
        Instance.objects.filter(type_name="Counter", key__startswith=prefix)
        .exclude(key=prefix)
        .values_list("pk", "key")
    )
    values = dict(StateEntry.objects.filter(instance_id__in=keys, name="value").values_list("instance_id", "value"))
    rows = [{"name": key.removeprefix(prefix), "value": values.get(pk, 0)} for pk, key in keys.items()]
    return sorted(rows, key=lambda row: row["name"])
