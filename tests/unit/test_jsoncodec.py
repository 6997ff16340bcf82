"""objects/jsoncodec.py: state texts written and read exactly as the standard library would, only faster."""

from __future__ import annotations

import datetime
import enum
import json
from collections import OrderedDict
from dataclasses import dataclass

import pytest

from objects import jsoncodec


def standard(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {},
        'é ü 😀 \u2028 \n "quoted" \\ null',
        [1, -1, 0, 2**63 - 1, 2**64 - 1, -(2**63)],
        [0.1, 1e16, 1.5e-7, -0.0, 123456.789],
        {"b": 1, "a": [True, False, None], "nested": {"x": [{"y": "z"}]}},
        {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
        [2**70, -(2**80)],  # past 64 bits: written by the standard library
        OrderedDict([("z", 1), ("a", 2)]),  # a dict subclass
        [Colour.RED],  # an int subclass
        [{"product_id": "p1", "quantity": 1, "price_cents": 199}] * 50,
    ],
)
def test_dumps_writes_what_the_standard_library_writes_and_loads_reads_it_back(value):
    text = jsoncodec.dumps(value)
    # the same text, except that a number with an exponent may be spelled 1e16 rather than 1e+16
    assert text.replace("e+", "e").replace("e-0", "e-") == standard(value).replace("e+", "e").replace("e-0", "e-")
    assert json.loads(text) == json.loads(standard(value))
    assert jsoncodec.loads(text) == json.loads(text)


@pytest.mark.parametrize("value", [float("nan"), [1, float("inf")], {"a": -float("inf")}])
def test_nan_and_infinities_are_refused_as_by_the_standard_library(value):
    with pytest.raises(ValueError):
        jsoncodec.dumps(value)


@dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value", [datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1), Point(1), {1, 2}, object()]
)
def test_what_the_standard_library_refuses_is_refused(value):
    with pytest.raises(TypeError):
        jsoncodec.dumps(value)


def test_loads_reads_postgresql_jsonb_text_and_keeps_long_integers_exact():
    assert jsoncodec.loads('[{"price_cents": 199, "product_id": "p1"}, 2]') == [
        {"price_cents": 199, "product_id": "p1"},
        2,
    ]
    assert jsoncodec.loads("[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert jsoncodec.loads(b'{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError):
        jsoncodec.loads("[1,")


@pytest.mark.parametrize(
    "text",
    [
        "[99999999999999999999]",  # 20 digits, past 64 bits
        "[-123456789012345678901]",
        '{"n": 18446744073709551616, "s": "x"}',  # 2**64
        "[1234567890123456789, 12345678901234567890123]",
        "[1.5, 12345678901234567890.5]",
        '["12345678901234567890", 1]',  # a run of digits in a string: read exactly either way
    ],
)
def test_every_long_number_is_read_exactly(text):
    import json

    assert jsoncodec.loads(text) == json.loads(text)
    assert repr(jsoncodec.loads(text)) == repr(json.loads(text))


def test_the_long_number_check_is_linear_in_the_text_and_finds_a_run_anywhere():
    from objects.jsoncodec import _long_number

    items = ",".join(f'{{"seq": {i}, "price_cents": 199}}' for i in range(2000))
    assert not _long_number(f"[{items}]")
    assert _long_number(f"[{items},123456789012345678901]")
    assert _long_number("12345678901234567890") and not _long_number("1234567890123456789")
    assert not _long_number("1234567890 1234567890")
