"""The products on sale: one product, a page of them in id order (keyset, for the API), a
numbered page of the catalog with an optional search, and the stock of a few products."""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from shop.extensions import db
from shop.models import Product

# The catalog page: a grid of this many products (the demo's 24 fit on one).
PER_PAGE = 24
MAX_SEARCH_LENGTH = 80


@dataclass(frozen=True)
class ProductPage:
    products: list[Product]
    next_after: int | None  # the id to continue after, if there are more


@dataclass(frozen=True)
class CatalogPage:
    """Page `number` of the products whose name contains `search` (all if empty)."""

    products: list[Product]
    search: str
    number: int
    total: int  # products matching
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def find_product(product_id: int) -> Product | None:
    return db.session.get(Product, product_id)


def products_after(after: int, limit: int) -> ProductPage:
    rows = db.session.scalars(
        select(Product).where(Product.id > after).order_by(Product.id).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    products = list(rows[:limit])
    return ProductPage(products, products[-1].id if more else None)


def catalog_page(search: str, number: int, per_page: int = PER_PAGE) -> CatalogPage | None:
    """The page, or None if there is no such page (past the last one)."""
    matching = select(Product)
    if search:
        matching = matching.where(Product.name.icontains(search, autoescape=True))
    total = db.session.scalar(select(func.count()).select_from(matching.subquery()))
    page = CatalogPage([], search, number, total, per_page)
    if number > page.pages:
        return None
    products = db.session.scalars(
        matching.order_by(Product.id).limit(per_page).offset((number - 1) * per_page)
    ).all()
    return CatalogPage(list(products), search, number, total, per_page)


def stock_of(product_ids: Iterable[int]) -> dict[int, int]:
    """The stock of each of a few products now (a product since removed is missing)."""
    ids = list(product_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(Product.id, Product.stock).where(Product.id.in_(ids)))
    return {product_id: stock for product_id, stock in rows}
