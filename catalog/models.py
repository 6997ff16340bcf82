"""The product catalog: the source of names and prices for carts and orders."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

SKU_RE = r"^[A-Z0-9][A-Z0-9-]{0,39}$"


class Product(models.Model):
    """A product for sale. `stock` seeds the product's Inventory object (key = SKU) in `load_demo`."""

    sku = models.CharField(
        "SKU",
        max_length=40,
        unique=True,
        validators=[RegexValidator(SKU_RE, "Use 1-40 upper-case letters, digits and dashes.")],
        help_text="Stock keeping unit: upper-case letters, digits and dashes; also the Inventory object's key.",
    )
    name = models.CharField(max_length=120, help_text="Shown in the catalog, carts and orders.")
    description = models.TextField(blank=True, help_text="Shown in the catalog.")
    price_cents = models.PositiveIntegerField(
        "price (cents)",
        validators=[MinValueValidator(1), MaxValueValidator(10_000_000)],
        help_text="Unit price in integer cents (1999 = 19.99).",
    )
    stock = models.PositiveIntegerField(
        default=0, help_text="Initial stock used to seed the Inventory object; live stock lives in Inventory."
    )
    active = models.BooleanField(default=True, help_text="Inactive products are hidden and cannot be added to carts.")

    class Meta:
        ordering = ["name"]
        verbose_name = "product"
        verbose_name_plural = "products"
        indexes = [models.Index(fields=["active", "name"], name="catalog_product_active_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"
