"""The registry: declaring types and handlers, and the start-up errors that name the culprit."""

from dataclasses import dataclass

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from objects import ObjectContext, SharedObjectContext, VirtualObject
from objects.registry import get_object, staff_only, unregister


@pytest.fixture
def fresh():
    names = []

    def make(name, **kwargs):
        names.append(name)
        return VirtualObject(name, **kwargs)

    yield make
    for name in names:
        unregister(name)


@dataclass
class Add:
    sku: str
    quantity: int = 1


class AddSerializer(serializers.Serializer):
    sku = serializers.CharField()


def test_decorators_record_the_handler_and_return_the_function_unchanged(fresh):
    obj = fresh("UnitCart")

    def add(ctx: ObjectContext, item: Add) -> int:
        return 1

    assert obj.exclusive(add) is add
    assert obj.handlers["add"].kind == "exclusive"
    assert obj.handlers["add"].input_type is Add


def test_shared_and_named_handlers_with_a_serializer_input(fresh):
    obj = fresh("UnitCart2")

    @obj.shared(name="peek", input=AddSerializer)
    def whatever(ctx: SharedObjectContext, arg):
        return arg

    handler = obj.handlers["peek"]
    assert (handler.kind, handler.input_type, handler.takes_input) == ("shared", AddSerializer, True)
    assert get_object("UnitCart2") is obj


def test_no_argument_handler_takes_no_input(fresh):
    obj = fresh("UnitCart3")

    @obj.exclusive
    def clear(ctx):
        return None

    assert obj.handlers["clear"].takes_input is False


def test_duplicate_type_name_fails_naming_it(fresh):
    fresh("Dup")
    with pytest.raises(ImproperlyConfigured, match="Duplicate object type 'Dup'"):
        VirtualObject("Dup")


def test_duplicate_handler_name_fails_naming_it(fresh):
    obj = fresh("DupHandler")

    @obj.exclusive
    def h(ctx):
        return None

    with pytest.raises(ImproperlyConfigured, match="Duplicate handler 'DupHandler.h'"):
        obj.shared(h)


@pytest.mark.parametrize("name", ["", "1abc", "has space", "dash-name", "x" * 101])
def test_invalid_type_names_fail(name):
    with pytest.raises(ImproperlyConfigured, match="Invalid object type name"):
        VirtualObject(name)


@pytest.mark.parametrize(
    "fn",
    [lambda: None, lambda ctx, a, b: None, lambda *args: None, lambda ctx, *, required: None],
    ids=["no-ctx", "three-args", "varargs", "required-kwonly"],
)
def test_bad_signatures_fail_naming_the_handler(fresh, fn):
    obj = fresh("BadSig")
    with pytest.raises(ImproperlyConfigured, match="Bad signature for handler 'BadSig.h'"):
        obj.exclusive(fn, name="h")


def test_input_type_on_a_no_argument_handler_fails(fresh):
    obj = fresh("BadInput")
    with pytest.raises(ImproperlyConfigured, match="declares an input type but takes no argument"):
        obj.exclusive(lambda ctx: None, name="h", input=Add)


def test_input_must_be_a_dataclass_or_serializer(fresh):
    obj = fresh("BadInput2")
    expected = "input must be a dataclass, a TypedDict, a pydantic model or a DRF Serializer"
    with pytest.raises(ImproperlyConfigured, match=expected):
        obj.exclusive(lambda ctx, a: None, name="h", input=dict)


def test_default_access_rule_is_staff_only(fresh):
    obj = fresh("Acl")
    assert obj.access is staff_only

    class U:
        is_staff = False

    assert staff_only(U(), "k", "h") is False
    U.is_staff = True
    assert staff_only(U(), "k", "h") is True


def test_shared_context_has_no_write_methods():
    for name in ("set", "clear", "clear_all", "call", "send", "run"):
        assert name not in SharedObjectContext.__dict__
        assert name in ObjectContext.__dict__


def test_public_api_is_explicit():
    """`objects.__all__` names the public API; each name resolves (some lazily), and the core is there."""
    import objects

    core = {
        "CallTimeout",
        "Caller",
        "Conflict",
        "DeadlockError",
        "HandlerKind",
        "NotFound",
        "ObjectContext",
        "ObjectsError",
        "Principal",
        "SharedObjectContext",
        "SharedWriteError",
        "TerminalError",
        "VirtualObject",
        "call",
        "instance_exists",
        "instance_keys",
        "send",
        "state_read",
        "state_values",
    }
    assert core <= set(objects.__all__)
    assert list(objects.__all__) == sorted(objects.__all__)
    for name in objects.__all__:
        assert getattr(objects, name) is not None
