"""The demo data set: products, shoppers with wallet balances, and a staff superuser."""

from __future__ import annotations

DEMO_PASSWORD = "demo-pass-123"
ADMIN_PASSWORD = "admin-pass-123"

# (sku, name, description, price in cents, initial stock)
PRODUCTS = [
    ("MUG-CLASSIC", "Classic mug", "A 350 ml stoneware mug that keeps its handle.", 1299, 40),
    ("TEE-ORGANIC", "Organic T-shirt", "Soft cotton tee with a small embroidered logo.", 2499, 25),
    ("NOTE-A5", "A5 notebook", "Dot grid, 192 pages, lies flat.", 1499, 60),
    ("PEN-BRASS", "Brass pen", "A pen that gets better with age.", 3999, 12),
    ("BOTTLE-STEEL", "Steel bottle", "750 ml, keeps drinks cold for 24 hours.", 2899, 30),
    ("SOCKS-WOOL", "Wool socks", "Merino blend, two pairs.", 1899, 50),
    ("CAP-CANVAS", "Canvas cap", "Adjustable strap, washed canvas.", 2199, 20),
    ("STICKERS", "Sticker pack", "Ten vinyl stickers, weatherproof.", 499, 200),
    ("TOTE-BAG", "Tote bag", "Heavy cotton tote with an inside pocket.", 1799, 35),
    ("POSTER-A2", "Poster A2", "Risograph print, numbered edition.", 3499, 3),
]

# username -> wallet balance in cents to seed
SHOPPERS = {"alice": 20_000, "bob": 3_000}
ADMIN_USERNAME = "admin"
