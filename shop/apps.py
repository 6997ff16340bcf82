"""App config of the shop: the browser UI (catalog, cart, checkout, orders, wallet)."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"
