"""A type's state schema (`VirtualObject(..., state_schema=...)`): which entries it checks and the errors
that name the path of what is wrong."""

from __future__ import annotations

from typing import Literal

import pytest
from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from objects import VirtualObject
from objects.registry import unregister


class Line(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    sku: str
    quantity: int


class CartState(BaseModel):
    lines: list[Line] = []
    status: Literal["open", "checked_out"] = "open"
    count: int = Field(default=0, ge=0)


@pytest.fixture
def fresh():
    names: list[str] = []

    def make(name, **kwargs):
        names.append(name)
        return VirtualObject(name, **kwargs)

    yield make
    for name in names:
        unregister(name)


def test_no_schema_checks_nothing(fresh):
    assert fresh("Free").entry_errors("anything", {"x": object.__name__}) == []


def test_a_pydantic_model_checks_each_entry_by_its_field(fresh):
    obj = fresh("Cart", state_schema=CartState)
    assert obj.entry_errors("lines", [{"sku": "TEE", "quantity": 2}]) == []
    assert obj.entry_errors("lines", "oops") == ["lines: Input should be a valid array"]
    assert obj.entry_errors("lines", [{"sku": "TEE", "quantity": "2"}]) == [
        "lines[0].quantity: Input should be a valid integer"
    ]
    assert obj.entry_errors("lines", [{"sku": "TEE", "quantity": 1, "qty": 1}]) == [
        "lines[0].qty: Extra inputs are not permitted"
    ]
    assert obj.entry_errors("status", "gone")[0].startswith("status: Input should be 'open' or 'checked_out'")
    assert obj.entry_errors("count", -1) == ["count: Input should be greater than or equal to 0"]
    assert obj.entry_errors("undeclared", "free") == []


def test_a_mapping_of_entry_names_to_types_or_adapters(fresh):
    obj = fresh("Counter2", state_schema={"n": int, "tags": TypeAdapter(list[str])})
    assert obj.entry_errors("n", 3) == [] and obj.entry_errors("n", "3") == ["n: Input should be a valid integer"]
    assert obj.entry_errors("tags", ["a", 1]) == ["tags[1]: Input should be a valid string"]


def test_a_schema_pydantic_cannot_use_is_refused_at_declaration(fresh):
    with pytest.raises(ImproperlyConfigured, match="Bad.n"):
        fresh("Bad", state_schema={"n": object()})
    with pytest.raises(ImproperlyConfigured, match="state_schema"):
        fresh("Bad2", state_schema=42)
