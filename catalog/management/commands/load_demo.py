"""`manage.py load_demo`: the demo catalog, shoppers and admin; idempotent (re-running changes nothing).

Needs the workers running: stock and wallet balances are seeded through the Inventory and Wallet objects,
with fixed transaction ids and idempotency keys.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

import objects
from catalog.demo import ADMIN_PASSWORD, ADMIN_USERNAME, DEMO_PASSWORD, PRODUCTS, SHOPPERS
from catalog.models import Product


class Command(BaseCommand):
    help = "Load the demo catalog, demo shoppers (alice, bob) with wallet balances and a staff superuser (admin)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait for each object call.")

    def handle(self, *args, timeout: float, **options):
        User = get_user_model()
        for sku, name, description, price, stock in PRODUCTS:
            Product.objects.get_or_create(
                sku=sku, defaults={"name": name, "description": description, "price_cents": price, "stock": stock}
            )
        for username in SHOPPERS:
            if not User.objects.filter(username=username).exists():
                User.objects.create_user(username, f"{username}@example.com", DEMO_PASSWORD)
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
        try:
            restocked = self._seed_stock(timeout)
            self._seed_wallets(timeout)
        except objects.ObjectsError as exc:
            raise CommandError(f"Seeding through the objects failed ({exc}); are the workers running?") from exc
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(PRODUCTS)} products ({restocked} stocked now)."))
        self.stdout.write("Logins:")
        for username in SHOPPERS:
            self.stdout.write(f"  shopper  {username} / {DEMO_PASSWORD}")
        self.stdout.write(f"  staff    {ADMIN_USERNAME} / {ADMIN_PASSWORD}  (/admin/)")

    def _seed_stock(self, timeout: float) -> int:
        """Restock each product's Inventory once: only when that Inventory object was never created."""
        count = 0
        for product in Product.objects.filter(sku__in=[p[0] for p in PRODUCTS], stock__gt=0):
            if objects.instance_exists("Inventory", product.sku):
                continue
            objects.call(
                "Inventory",
                product.sku,
                "restock",
                {"quantity": product.stock},
                timeout=timeout,
                idempotency_key=f"demo-restock-{product.sku}",
            )
            count += 1
        return count

    def _seed_wallets(self, timeout: float) -> None:
        for username, amount in SHOPPERS.items():
            tx_id = f"demo-seed-{username}"
            objects.call(
                "Wallet",
                username,
                "deposit",
                {"amount": amount, "tx_id": tx_id},
                timeout=timeout,
                idempotency_key=tx_id,
            )
