"""JSON Schemas of handler inputs: dataclass fields mapped to properties, DRF serializers via drf-spectacular."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from ..registry import Handler

_BASIC: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    list: {"type": "array", "items": {}},
    dict: {"type": "object", "additionalProperties": {}},
    type(None): {"type": "null"},
    Any: {},
}


def type_schema(hint: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema for a Python type hint (the subset dataclass inputs use); unknown hints are `{}`."""
    if depth > 8:
        return {}
    if hint in _BASIC:
        return dict(_BASIC[hint])
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return dataclass_schema(hint, depth + 1)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(a, depth + 1) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": type_schema(args[0], depth + 1) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1], depth + 1) if len(args) == 2 else {}}
    return {}


def dataclass_schema(cls: Any, depth: int = 0) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties = {f.name: type_schema(hints.get(f.name, Any), depth) for f in dataclasses.fields(cls)}
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    schema: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False  # unknown fields are refused (objects.validation)
    return schema


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


def _inline(node: Any, components: dict[str, Any], depth: int) -> Any:
    """Replace component references with their schemas, so the result stands alone."""
    if isinstance(node, list):
        return [_inline(n, components, depth) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        target = components.get(ref.rsplit("/", 1)[1])
        return _inline(target, components, depth + 1) if target is not None and depth < 8 else {"type": "object"}
    return {k: _inline(v, components, depth) for k, v in node.items() if k != "x-spec-enum-id"}


def input_schema(handler: Handler) -> dict[str, Any] | None:
    """The handler's input as JSON Schema; None for a handler without input, `{}` for any JSON."""
    if not handler.takes_input:
        return None
    input_type = handler.input_type
    if input_type is None:
        return {}
    if dataclasses.is_dataclass(input_type):
        return dataclass_schema(input_type)
    return serializer_schema(input_type)
