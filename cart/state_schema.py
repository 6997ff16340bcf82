"""The shape of a ShoppingCart's state, declared for the admin: an operator's edit of an entry is checked
against it before it is written (a line is {"sku", "quantity", "name", "unit_price_cents"})."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from .limits import MAX_LINES, MAX_QUANTITY


class CartLine(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]  # pydantic reads it; mypy does not know it

    sku: str
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    name: str
    unit_price_cents: Annotated[int, Field(ge=0)]


class CartState(BaseModel):
    lines: list[CartLine] = Field(default=[], max_length=MAX_LINES)
    status: Literal["open", "checked_out"] = "open"
    order_id: str | None = None
    version: int = Field(default=0, ge=0)
    orders: list[str] = []
