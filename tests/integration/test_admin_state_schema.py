"""The admin's entry editor and a type's state schema: a value of the wrong shape is a form error naming its
path and nothing is written; a valid one is shown as a before/after difference to confirm before it is saved."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from objects.models import StateChange
from tests.integration.admin_fixtures import entries, messages_of, operator, put  # noqa: F401  # a fixture

pytestmark = pytest.mark.django_db
LINE = {"sku": "TEE", "quantity": 1, "name": "Tee", "unit_price_cents": 1500}


def edit_url(inst, name: str) -> str:
    return reverse("admin:objects_instance_entry_edit", args=[inst.pk]) + f"?name={name}"


def test_the_cart_refuses_oops_as_its_lines_with_the_path_and_writes_nothing(operator):  # noqa: F811
    cart = put("alice", type_name="ShoppingCart", lines=[LINE], status="open")
    response = operator.post(edit_url(cart, "lines"), {"name": "lines", "value": '"oops"', "version": cart.version})
    assert response.status_code == 400
    assert "lines: Input should be a valid array" in response.content.decode()
    assert entries(cart)["lines"] == [LINE]
    bad_quantity = json.dumps([{**LINE, "quantity": "2"}])
    response = operator.post(edit_url(cart, "lines"), {"name": "lines", "value": bad_quantity, "version": cart.version})
    assert "lines[0].quantity: Input should be a valid integer" in response.content.decode()
    assert StateChange.objects.filter(instance=cart, user__isnull=False).count() == 0


def test_a_valid_edit_shows_the_difference_and_saves_only_when_confirmed(operator):  # noqa: F811
    cart = put("alice", type_name="ShoppingCart", lines=[LINE], status="open")
    new = json.dumps([{**LINE, "quantity": 3}])
    form = {"name": "lines", "value": new, "version": cart.version}
    page = operator.post(edit_url(cart, "lines"), form)
    body = page.content.decode()
    assert page.status_code == 200 and "Confirm" in body
    assert "lines[0].quantity" in body and "<del>1</del>" in body and "<ins>3</ins>" in body
    assert entries(cart)["lines"] == [LINE]  # not yet
    response = operator.post(edit_url(cart, "lines"), {**form, "confirm": "yes"}, follow=True)
    assert entries(cart)["lines"] == [{**LINE, "quantity": 3}]
    assert any("Set 'lines'" in m for m in messages_of(response))


def test_a_confirmed_edit_is_checked_again(operator):  # noqa: F811
    cart = put("alice", type_name="ShoppingCart", lines=[LINE])
    form = {"name": "lines", "value": '"oops"', "version": cart.version, "confirm": "yes"}
    assert operator.post(edit_url(cart, "lines"), form).status_code == 400
    assert entries(cart)["lines"] == [LINE]


def test_a_type_without_a_schema_saves_at_once(operator):  # noqa: F811
    inst = put("w", balance=10)
    response = operator.post(edit_url(inst, "balance"), {"name": "balance", "value": '"oops"', "version": inst.version})
    assert response.status_code == 302 and entries(inst) == {"balance": "oops"}


def test_entries_the_schema_does_not_declare_are_free(operator):  # noqa: F811
    cart = put("alice", type_name="ShoppingCart", lines=[LINE])
    form = {"name": "note", "value": '"call back"', "version": cart.version}
    assert "Confirm" in operator.post(edit_url(cart, "note"), form).content.decode()
