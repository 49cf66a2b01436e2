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
    """One row whose numbers go up with every change to `products`.

    Database triggers (see the migrations) bump them in the transaction that changes a
    product, whatever made the change: a checkout, a restock, an edit in a shell. `version`
    moves when a product is added, removed, renamed, described or priced anew; `stock_version`
    when only its stock changes. Each web process keys its rendered catalog pages by the
    first and the stock it shows on them by the second (`shop.catalog_cache`), so that an
    order does not make it render anything again.
    """

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    stock_version: Mapped[int] = mapped_column(default=0, server_default="0")
