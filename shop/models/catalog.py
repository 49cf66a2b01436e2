"""Products on sale."""

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db


class Product(db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_minor > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(default=0)


class CatalogVersion(db.Model):
    """One row whose number goes up with every change to `products`.

    Database triggers (see the migration) bump it in the transaction that changes a product,
    whatever made the change: a checkout, a restock, an edit in a shell. Each web process keys
    its cached product grid by it (`shop.catalog_cache`).
    """

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
