"""Test types of the input checks (tests/security/test_inputs.py): a dataclass with nested fields and a DRF
serializer with a nested list, each storing and answering what its handler received."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from rest_framework import serializers

from objects import ObjectContext, VirtualObject

inputs = VirtualObject("Inputs", access=lambda user, key, handler: user.is_authenticated)


@dataclass
class Inner:
    a: int


@dataclass
class Tags:
    tags: list[int]
    inner: Inner | None = None


@inputs.exclusive
def tag(ctx: ObjectContext, arg: Tags) -> dict:
    received = dataclasses.asdict(arg)
    ctx.set("received", received)
    return received


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=10)
    quantity = serializers.IntegerField(min_value=1, max_value=100)


class BasketSerializer(serializers.Serializer):
    lines = LineSerializer(many=True)
    note = serializers.CharField(required=False, max_length=50)


@inputs.exclusive(input=BasketSerializer)
def basket(ctx: ObjectContext, arg: dict) -> dict:
    received = json.loads(json.dumps(arg))
    ctx.set("received", received)
    return received
