"""Helpers shared by the cart and shop tests: products with stock, shoppers with money."""

from __future__ import annotations

import contextlib
import threading

from django.db import connection, transaction

import objects
from catalog.models import Product
from objects.models import Instance


def make_product(sku: str, *, name: str | None = None, price: int = 1000, stock: int = 10, active: bool = True):
    product = Product.objects.create(
        sku=sku, name=name or sku.title(), description="", price_cents=price, stock=stock, active=active
    )
    if stock:
        objects.call("Inventory", sku, "restock", {"quantity": stock})
    return product


def fund(username: str, amount: int) -> int:
    return objects.call("Wallet", username, "deposit", {"amount": amount, "tx_id": f"fund-{username}-{amount}"})[
        "balance"
    ]


def balance(username: str) -> int:
    return objects.call("Wallet", username, "balance")["balance"]


def stock(sku: str) -> dict:
    return objects.call("Inventory", sku, "available")


def cart(key: str) -> dict:
    return objects.call("ShoppingCart", key, "get_cart")


@contextlib.contextmanager
def key_held(type_name: str, key: str):
    """Hold the key's row lock from another connection, as a long-running handler would."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Instance.objects.select_for_update(no_key=True).get(type_name=type_name, key=key)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()
