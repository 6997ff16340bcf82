"""Handler inputs of ShoppingCart, validated before an invocation is accepted (bad input is a 400, never a row)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import serializers

from objects import TerminalError

from .limits import ANON_PREFIX, MAX_QUANTITY


class SkuField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=40, min_length=1, trim_whitespace=True, **kwargs)


class AddItemInput(serializers.Serializer):
    sku = SkuField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class UpdateQuantityInput(serializers.Serializer):
    sku = SkuField()
    quantity = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY, help_text="0 removes the line.")


class RemoveItemInput(serializers.Serializer):
    sku = SkuField()


class ExpireInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=0)


class MergeInput(serializers.Serializer):
    from_key = serializers.CharField(max_length=255)

    def to_internal_value(self, data):
        # "from" is a Python keyword, so the JSON field is mapped by hand.
        if isinstance(data, dict) and "from" in data:
            data = {"from_key": data["from"], **{k: v for k, v in data.items() if k != "from"}}
        return super().to_internal_value(data)

    def validate_from_key(self, value: str) -> str:
        if not value.startswith(ANON_PREFIX) or len(value) == len(ANON_PREFIX):
            raise serializers.ValidationError(f"Only an anonymous cart ({ANON_PREFIX}<session key>) can be merged.")
        return value


@dataclass
class CheckoutInput:
    """`checkout`: optionally the total the shopper saw; a cart whose total differs now is refused (412)."""

    expected_total_cents: int | None = None

    def __post_init__(self) -> None:
        if self.expected_total_cents is not None and not 0 <= self.expected_total_cents <= 10**12:
            raise TerminalError("expected_total_cents: must be a whole number of cents, 0 or more.", 400)
