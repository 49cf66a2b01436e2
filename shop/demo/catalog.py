"""The demo catalog: 24 products across every risk band, a few with little stock."""

from sqlalchemy import select

from shop.extensions import db
from shop.models import Product

# (name, price in minor units, stock, description)
PRODUCTS: list[tuple[str, int, int, str]] = [
    ("Enamel pin", 499, 200, "A small enamel pin with the shop's logo."),
    ("Sticker sheet", 650, 150, "Twelve weatherproof vinyl stickers."),
    ("Canvas tote bag", 1500, 80, "Heavy cotton tote with a long strap."),
    ("Ceramic mug", 1800, 60, "Stoneware mug, 350 ml, dishwasher safe."),
    ("Notebook, dotted", 2200, 90, "A5, 160 pages of 100 g paper, lay-flat binding."),
    ("Merino socks", 2450, 3, "Two pairs of light merino socks."),
    ("Desk plant", 2900, 25, "A hardy snake plant in a 12 cm pot."),
    ("Phone stand", 3500, 40, "Aluminium stand that folds flat."),
    ("Cotton hoodie", 6500, 30, "Organic cotton, brushed inside."),
    ("Wireless mouse", 7900, 35, "Quiet clicks, USB-C charging."),
    ("Desk lamp", 11900, 20, "LED lamp with warm and cool light."),
    ("Mechanical keyboard", 14900, 15, "Tenkeyless, hot-swappable switches."),
    ("Running shoes", 15900, 2, "Light trainers for road running."),
    ("Noise-cancelling headphones", 19900, 12, "Over-ear, 30 hours of battery."),
    ("Smart watch", 22900, 10, "Heart rate, GPS and a week of battery."),
    ("Espresso grinder", 24900, 1, "Flat burrs, stepless adjustment."),
    ("Office chair", 32900, 8, "Mesh back, adjustable arms and lumbar."),
    ("Tablet", 44900, 9, "11-inch screen, 128 GB."),
    ("Road bike helmet", 27500, 14, "MIPS helmet, 260 g."),
    ("Espresso machine", 69900, 5, "Dual boiler, PID temperature control."),
    ("4K monitor", 54900, 6, "27-inch IPS panel, USB-C with 90 W."),
    ("Laptop", 149900, 4, "14-inch, 16 GB memory, 1 TB storage."),
    ("Camera kit", 249900, 3, "Full-frame body with a 24-70 mm lens."),
    ("Designer sofa", 649900, 1, "Three-seater in wool, made to order."),
]


def seed_products(currency: str) -> int:
    """Add the demo products that are not there yet; return how many were added."""
    existing = set(db.session.scalars(select(Product.name)))
    added = 0
    for name, price_minor, stock, description in PRODUCTS:
        if name not in existing:
            db.session.add(
                Product(
                    name=name,
                    price_minor=price_minor,
                    currency=currency,
                    stock=stock,
                    description=description,
                )
            )
            added += 1
    return added
