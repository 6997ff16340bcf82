"""JSON Schemas of handler inputs: from the TypeAdapter that validates them (a dataclass, TypedDict or pydantic
model), or from a DRF serializer via drf-spectacular; nested types inlined, so each schema stands alone."""

from __future__ import annotations

from typing import Any

from ..registry import Handler


def serializer_schema(serializer_class: type) -> dict[str, Any]:
    """Map a DRF serializer's fields with drf-spectacular (nested serializers are inlined as objects)."""
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.plumbing import ComponentRegistry
    from rest_framework.views import APIView

    inspector = AutoSchema()
    inspector.registry = ComponentRegistry()
    inspector.method = "POST"
    inspector.path = "/"
    view = APIView()
    view.request = None  # type: ignore[assignment]
    inspector.view = view
    try:
        schema = inspector._map_basic_serializer(serializer_class(), "request")
    except Exception:  # noqa: BLE001 - a field drf-spectacular cannot map leaves the schema open, not an error
        return {"type": "object"}
    components = {c.name: c.schema for c in inspector.registry._components.values()}
    return _inline(schema, components, 0)


def adapter_schema(adapter: Any) -> dict[str, Any]:
    """The JSON Schema pydantic generates for a TypeAdapter (`json_schema()`), its `$defs` inlined."""
    schema = dict(adapter.json_schema())
    definitions = schema.pop("$defs", {})
    return _inline(schema, definitions, 0)


def _inline(node: Any, components: dict[str, Any], depth: int) -> Any:
    """Replace references (`#/components/schemas/...`, `#/$defs/...`) with their schemas, so the result stands
    alone; past 8 levels (a recursive type) a reference is any object."""
    if isinstance(node, list):
        return [_inline(n, components, depth) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if ref.startswith(("#/components/schemas/", "#/$defs/")):
        target = components.get(ref.rsplit("/", 1)[1])
        return _inline(target, components, depth + 1) if target is not None and depth < 8 else {"type": "object"}
    return {k: _inline(v, components, depth) for k, v in node.items() if k != "x-spec-enum-id"}


def input_schema(handler: Handler) -> dict[str, Any] | None:
    """The handler's input as JSON Schema; None for a handler without input, `{}` for any JSON."""
    if not handler.takes_input:
        return None
    if handler.adapter is not None:
        return adapter_schema(handler.adapter)
    if handler.input_type is None:
        return {}
    return serializer_schema(handler.input_type)
