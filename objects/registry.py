"""The registry of virtual object types and their handlers; `VirtualObject` is how apps declare them."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError
from typing_extensions import is_typeddict

HandlerKind = Literal["exclusive", "shared"]
AccessRule = Callable[[Any, str, str], bool]

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_registry: dict[str, VirtualObject] = {}


def staff_only(user: Any, key: str, handler: str) -> bool:
    """The default access rule: staff users only."""
    return bool(getattr(user, "is_staff", False))


@dataclasses.dataclass(frozen=True)
class Handler:
    """One handler of an object type: its function, kind and declared input type.

    `adapter` is the input's pydantic TypeAdapter (a dataclass, TypedDict or pydantic model), built once here:
    it validates every call's input and gives the OpenAPI schema. None for a DRF serializer or no type."""

    object_name: str
    name: str
    kind: HandlerKind
    fn: Callable[..., Any]
    takes_input: bool
    input_type: Any = None
    adapter: TypeAdapter[Any] | None = dataclasses.field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.input_type is not None and not _is_serializer(self.input_type):
            object.__setattr__(self, "adapter", input_adapter(self.input_type))

    @property
    def qualified_name(self) -> str:
        return f"{self.object_name}.{self.name}"


class VirtualObject:
    """A named object type with handlers; each key is one instance with durable state.

    >>> cart = VirtualObject("ShoppingCart")
    >>> @cart.exclusive
    ... def add_item(ctx, item): ...

    `state_ttl` (a timedelta or seconds) clears an instance's state after that long without a change;
    `access(user, key, handler) -> bool` decides who may call it over HTTP (default: staff only);
    `state_history=False` records no history of its handlers' state changes (an operator's edits still are);
    `state_schema` (a pydantic model whose fields are entry names, or a mapping of entry name to a type or a
    TypeAdapter) is what the admin checks an operator's edit of an entry against; undeclared entries are free.
    """

    def __init__(
        self,
        name: str,
        *,
        state_ttl: timedelta | float | None = None,
        access: AccessRule | None = None,
        description: str = "",
        state_history: bool = True,
        state_schema: Any = None,
    ) -> None:
        if not NAME_RE.match(name or ""):
            raise ImproperlyConfigured(
                f"Invalid object type name {name!r}: use letters, digits and underscores, starting with a letter."
            )
        if isinstance(state_ttl, (int, float)):
            state_ttl = timedelta(seconds=state_ttl)
        self.name = name
        self.state_ttl: timedelta | None = state_ttl
        self.state_history = state_history
        self.access: AccessRule = access or staff_only
        self.description = description
        self.handlers: dict[str, Handler] = {}
        self.state_schema = state_schema
        self.state_adapters = state_adapters(name, state_schema)
        register(self)

    def __repr__(self) -> str:
        return f"VirtualObject({self.name!r})"

    def entry_errors(self, name: str, value: Any) -> list[str]:
        """What is wrong with `value` as state entry `name` by the type's state schema, each "path: message"
        (`lines[0].quantity: Input should be a valid integer`); [] when it fits or the entry is not declared.
        Checked as JSON, strictly: "2" is no integer."""
        adapter = self.state_adapters.get(name)
        if adapter is None:
            return []
        try:
            adapter.validate_json(json.dumps(value), strict=True)
        except ValidationError as exc:
            return [f"{name}{_path(error['loc'])}: {error['msg']}" for error in exc.errors()]
        return []

    def exclusive(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None, input: Any = None) -> Any:
        """Declare an exclusive handler: it may write state and runs alone per key, in arrival order."""
        return self._decorate("exclusive", fn, name, input)

    def shared(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None, input: Any = None) -> Any:
        """Declare a shared handler: read-only, never waits for the key, runs concurrently."""
        return self._decorate("shared", fn, name, input)

    handler = exclusive

    def _decorate(self, kind: HandlerKind, fn: Callable[..., Any] | None, name: str | None, input_type: Any) -> Any:
        def record(f: Callable[..., Any]) -> Callable[..., Any]:
            self._add(kind, f, name or f.__name__, input_type)
            return f

        return record(fn) if fn is not None else record

    def _add(self, kind: HandlerKind, fn: Callable[..., Any], name: str, input_type: Any) -> None:
        where = f"{self.name}.{name}"
        if not NAME_RE.match(name):
            raise ImproperlyConfigured(f"Invalid handler name {where!r}: use letters, digits and underscores.")
        if name in self.handlers:
            raise ImproperlyConfigured(f"Duplicate handler {where!r}: each handler name may be declared once.")
        params = list(inspect.signature(fn).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required_kw = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
        if not 1 <= len(positional) <= 2 or required_kw or len(positional) != len(params):
            raise ImproperlyConfigured(
                f"Bad signature for handler {where!r}: expected (ctx) or (ctx, arg), got {inspect.signature(fn)}."
            )
        takes_input = len(positional) == 2
        if input_type is None and takes_input:
            annotation = positional[1].annotation
            if isinstance(annotation, str):
                try:
                    annotation = inspect.get_annotations(fn, eval_str=True).get(positional[1].name, annotation)
                except Exception:  # noqa: BLE001 - an unresolvable annotation is simply not an input type
                    annotation = None
            if _is_input_type(annotation):
                input_type = annotation
        if input_type is not None:
            if not takes_input:
                raise ImproperlyConfigured(f"Handler {where!r} declares an input type but takes no argument.")
            if not _is_input_type(input_type):
                raise ImproperlyConfigured(
                    f"Handler {where!r}: input must be a dataclass, a TypedDict, a pydantic model or a DRF "
                    f"Serializer class, got {input_type!r}."
                )
        try:
            self.handlers[name] = Handler(self.name, name, kind, fn, takes_input, input_type)
        except PydanticUserError as exc:  # a field type pydantic cannot validate, typing.TypedDict before 3.12
            raise ImproperlyConfigured(f"Handler {where!r}: its input type cannot be validated: {exc}") from exc


def input_adapter(input_type: Any) -> TypeAdapter[Any]:
    """The TypeAdapter that validates a handler's JSON input (`TypeAdapter.validate_json`).

    A dataclass or TypedDict is taken strictly, as JSON: `"2"` is no integer and `true` no number, and
    unknown fields are refused, at every level (a nested class that declares its own pydantic config keeps
    it). pydantic takes no config for a class that could carry its own, so it is given to a NewType of the
    class, which validates as the class. A pydantic model keeps its own config.
    """
    if issubclass(input_type, BaseModel):
        return TypeAdapter(input_type)
    named = typing.NewType(input_type.__name__, input_type)  # type: ignore[misc]  # a name made at run time
    return TypeAdapter(named, config=ConfigDict(strict=True, extra="forbid"))


def state_adapters(type_name: str, schema: Any) -> dict[str, TypeAdapter[Any]]:
    """One TypeAdapter per declared entry of a state schema (see VirtualObject)."""
    if schema is None:
        return {}
    if inspect.isclass(schema) and issubclass(schema, BaseModel):
        fields: dict[str, Any] = {n: Annotated[f.annotation, f] for n, f in schema.model_fields.items()}
    elif isinstance(schema, Mapping):
        fields = dict(schema)
    else:
        raise ImproperlyConfigured(
            f"{type_name}: state_schema must be a pydantic model or a mapping of entry name to type, got {schema!r}."
        )
    adapters = {}
    for entry, annotation in fields.items():
        try:
            adapters[entry] = annotation if isinstance(annotation, TypeAdapter) else TypeAdapter(annotation)
        except PydanticUserError as exc:
            raise ImproperlyConfigured(f"{type_name}.{entry}: its state schema type cannot be checked: {exc}") from exc
    return adapters


def _path(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _is_serializer(candidate: Any) -> bool:
    from rest_framework import serializers

    return inspect.isclass(candidate) and issubclass(candidate, serializers.BaseSerializer)


def _is_input_type(candidate: Any) -> bool:
    if not inspect.isclass(candidate):
        return False
    if dataclasses.is_dataclass(candidate) or is_typeddict(candidate) or issubclass(candidate, BaseModel):
        return True
    return _is_serializer(candidate)


def register(obj: VirtualObject) -> None:
    existing = _registry.get(obj.name)
    if existing is not None and existing is not obj:
        raise ImproperlyConfigured(
            f"Duplicate object type {obj.name!r}: it is declared twice; each type name may be declared once."
        )
    _registry[obj.name] = obj


def unregister(name: str) -> None:
    """Remove a type (tests that declare throwaway types use it)."""
    _registry.pop(name, None)


def get_object(name: str) -> VirtualObject | None:
    return _registry.get(name)


def all_objects() -> list[VirtualObject]:
    return sorted(_registry.values(), key=lambda o: o.name)


def autodiscover() -> None:
    """Import `<app>/virtual_objects.py` of every installed app, as the admin does with admin.py."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("virtual_objects")
