"""Handler inputs over real HTTP, on both web paths: the whole structure of a dataclass input is validated
(nested fields, list items), a DRF serializer's input reaches the handler and the database with its declared
fields only. Each request is made twice: with a query string (the threads answer it: objects/asgi.py takes no
request with one), then without, while the token is in the process's cache (the event loop answers it)."""

from __future__ import annotations

import json

import pytest

from objects.models import Instance, Invocation, StateEntry

from .conftest import Person, RawHTTP, RawResponse

pytestmark = pytest.mark.workers


def both(http: RawHTTP, path: str, body: object, person: Person) -> dict[str, RawResponse]:
    """The same POST through the threads, then on the event loop."""
    data = json.dumps(body).encode()
    return {
        "threads": http.request("POST", f"{path}?via=threads", data, person.header),
        "loop": http.request("POST", path, data, person.header),
    }


def _rows(key: str) -> tuple[int, int]:
    return Instance.objects.filter(key=key).count(), Invocation.objects.filter(key=key).count()


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({"tags": ["x", None]}, ["tags.0: Input should be a valid integer", "tags.1: Input should be a valid integer"]),
        ({"tags": [1, "2"]}, ["tags.1: Input should be a valid integer"]),
        ({"tags": [1], "inner": {"a": "1"}}, ["inner.a: Input should be a valid integer"]),
        ({"tags": [1], "inner": {"a": 1, "admin": True}}, ["inner.admin: unknown field"]),
        ({"tags": [[1]]}, ["tags.0: Input should be a valid integer"]),
        ({"tags": [2**64]}, ["tags.0: number out of range"]),
        ({"tags": {"0": 1}}, ["tags: Input should be a valid array"]),
    ],
)
@pytest.mark.parametrize("kind", ["call", "send"])
def test_a_nested_field_of_a_dataclass_input_is_checked_on_both_paths(live_web, raw_http, alice, body, messages, kind):
    path = "/ingress/Inputs/nested/tag" + ("/send" if kind == "send" else "")
    for side, response in both(raw_http, path, body, alice).items():
        assert response.status == 400, (side, response.status, response.body[:300])
        error = response.json()
        assert error["code"] == 400 and error["source"] == "ingress", (side, error)
        for message in messages:
            assert message in error["message"], (side, error["message"])
    assert _rows("nested") == (0, 0), "bad input became a row"


def test_a_valid_nested_dataclass_input_reaches_the_handler_on_both_paths(live_web, raw_http, alice):
    body = {"tags": [1, 2], "inner": {"a": 3}}
    for side, response in both(raw_http, "/ingress/Inputs/good/tag", body, alice).items():
        assert response.status == 200, (side, response.body[:300])
        assert response.json() == body, side
    assert [i.input for i in Invocation.objects.filter(key="good")] == [body, body]


def test_a_serializer_input_keeps_only_its_declared_fields_on_both_paths(live_web, raw_http, alice):
    body = {"lines": [{"sku": "A", "quantity": 2, "price_cents": 0}], "note": "hi", "admin": True}
    declared = {"lines": [{"sku": "A", "quantity": 2}], "note": "hi"}
    for side, response in both(raw_http, "/ingress/Inputs/declared/basket", body, alice).items():
        assert response.status == 200, (side, response.body[:300])
        assert response.json() == declared, f"{side}: the handler received undeclared fields"
    stored = [i.input for i in Invocation.objects.filter(key="declared")]
    assert stored == [declared, declared], "undeclared fields were stored"
    assert StateEntry.objects.get(instance__key="declared", name="received").value == declared


def test_a_nested_serializer_error_names_the_item_and_field_on_both_paths(live_web, raw_http, alice):
    body = {"lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 0}]}
    for side, response in both(raw_http, "/ingress/Inputs/items/basket", body, alice).items():
        assert response.status == 400, (side, response.body[:300])
        message = response.json()["message"]
        assert "lines.1.quantity: Ensure this value is greater than or equal to 1." in message, (side, message)
    assert _rows("items") == (0, 0)
