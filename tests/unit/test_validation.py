"""Validation before acceptance: keys, dataclass inputs, sizes."""

from dataclasses import dataclass

import pytest

from objects.errors import InvalidInput, PayloadTooLarge
from objects.registry import Handler
from objects.validation import check_entry_size, validate_input, validate_key


@dataclass
class Line:
    sku: str
    quantity: int
    note: str | None = None


HANDLER = Handler("T", "h", "exclusive", lambda ctx, a: None, True, Line)
NO_INPUT = Handler("T", "n", "exclusive", lambda ctx: None, False)


@pytest.mark.parametrize("key", ["a", "user123", "ключ", "a/b", "a b", "%", "x" * 255, "🙂", ".."])
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "a\x00b", "tab\there", "del\x7f", None, 5])
def test_invalid_keys_name_the_rule(key):
    with pytest.raises(InvalidInput, match="1 to 255 characters"):
        validate_key(key)


def test_dataclass_input_accepts_good_input():
    assert validate_input(HANDLER, {"sku": "A", "quantity": 2}) == {"sku": "A", "quantity": 2}


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ({"sku": "A"}, "quantity: this field is required"),
        ({"sku": "A", "quantity": "2"}, "quantity: expected int, got a string"),
        ({"sku": "A", "quantity": True}, "quantity: expected int, got a boolean"),
        ({"sku": "A", "quantity": 1, "extra": 1}, "unknown field"),
        ([1, 2], "expected a JSON object"),
        ({"sku": "A", "quantity": 10**30}, "out of range"),
    ],
)
def test_dataclass_input_errors_name_the_field(arg, message):
    with pytest.raises(InvalidInput, match=message):
        validate_input(HANDLER, arg)


def test_no_input_handler_refuses_a_body_but_accepts_empty():
    assert validate_input(NO_INPUT, None) is None
    assert validate_input(NO_INPUT, {}) is None
    with pytest.raises(InvalidInput, match="takes no input"):
        validate_input(NO_INPUT, {"a": 1})


def test_state_entry_size_limit(settings):
    settings.OBJECTS_MAX_STATE_ENTRY_BYTES = 100
    check_entry_size("ok", "x" * 50)
    with pytest.raises(PayloadTooLarge, match="limit is 100 bytes"):
        check_entry_size("big", "x" * 200)
