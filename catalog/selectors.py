"""Selectors that read the catalog."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Product


def product_list_active() -> list[Product]:
    """Active products, by name."""
    return list(Product.objects.filter(active=True).order_by("name"))


def products_by_sku(*, skus: Iterable[str]) -> dict[str, Product]:
    """The products with these SKUs (active or not), keyed by SKU."""
    return {p.sku: p for p in Product.objects.filter(sku__in=list(skus))}
