"""The products on sale: one product, and a page of them in id order (keyset, so a page
costs the same however many products come before it)."""

from dataclasses import dataclass

from sqlalchemy import select

from shop.extensions import db
from shop.models import Product


@dataclass(frozen=True)
class ProductPage:
    products: list[Product]
    next_after: int | None  # the id to continue after, if there are more


def find_product(product_id: int) -> Product | None:
    return db.session.get(Product, product_id)


def products_after(after: int, limit: int) -> ProductPage:
    rows = db.session.scalars(
        select(Product).where(Product.id > after).order_by(Product.id).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    products = list(rows[:limit])
    return ProductPage(products, products[-1].id if more else None)
