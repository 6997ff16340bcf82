"""Admin for the catalog: products are managed here."""

from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price_cents", "stock", "active")
    list_filter = ("active",)
    search_fields = ("sku", "name")
    list_editable = ("active",)
    ordering = ("name",)
