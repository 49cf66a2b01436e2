"""Carts: quantities per product, priced only from the database, stored per user or per session.

A cart's contents are a plain mapping {product_id: quantity}. The signed-in shopper's cart is
kept in the database; before sign-in the web layer keeps the same mapping in the session and
merges it into the user's cart at sign-in.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select

from shop import clock
from shop.extensions import db
from shop.models import Cart, CartItem, Product, User

MAX_QUANTITY = 99

Contents = dict[int, int]


class CartError(ValueError):
    """The change cannot be made; the message is safe to show to the shopper."""


class NoSuchProduct(CartError):
    """The product asked for does not exist."""


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total_minor(self) -> int:
        return self.product.price_minor * self.quantity


@dataclass(frozen=True)
class PricedCart:
    lines: list[CartLine]
    currency: str

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def contents(self) -> Contents:
        return {line.product.id: line.quantity for line in self.lines}


def add_item(contents: Mapping[int, int], product: Product, quantity: int) -> Contents:
    """Contents with `quantity` more of `product`, within the per-item cap and the stock."""
    return set_quantity(contents, product, contents.get(product.id, 0) + quantity)


def set_quantity(contents: Mapping[int, int], product: Product, quantity: int) -> Contents:
    """Contents with exactly `quantity` of `product`; 0 removes it."""
    if quantity > MAX_QUANTITY:
        raise CartError(f"You can have at most {MAX_QUANTITY} of one item in your cart.")
    if quantity > product.stock:
        if product.stock == 0:
            raise CartError(f"{product.name} is out of stock.")
        raise CartError(f"Only {product.stock} of {product.name} left in stock.")
    updated = dict(contents)
    if quantity <= 0:
        updated.pop(product.id, None)
    else:
        updated[product.id] = quantity
    return updated


def change(
    contents: Mapping[int, int], product_id: int, quantity: int, *, add: bool
) -> tuple[Contents, Product]:
    """Contents with `quantity` more of a product (`add`), or exactly `quantity` (0 removes).

    Raises NoSuchProduct, or CartError when the quantity is past the cap or the stock.
    """
    product = db.session.get(Product, product_id)
    if product is None:
        raise NoSuchProduct("There is no such product.")
    if add:
        return add_item(contents, product, quantity), product
    return set_quantity(contents, product, quantity), product


def merge(into: Mapping[int, int], other: Mapping[int, int]) -> Contents:
    """Both carts together, each item capped at MAX_QUANTITY (stock is checked at checkout)."""
    merged = dict(into)
    for product_id, quantity in other.items():
        merged[product_id] = min(merged.get(product_id, 0) + quantity, MAX_QUANTITY)
    return merged


def price(contents: Mapping[int, int], currency: str) -> PricedCart:
    """Lines priced from the database; unknown products are dropped."""
    if not contents:
        return PricedCart([], currency)
    products = db.session.scalars(
        select(Product).where(Product.id.in_(contents)).order_by(Product.id)
    ).all()
    lines = [CartLine(product, contents[product.id]) for product in products]
    if any(line.product.currency != currency for line in lines):
        raise CartError("This cart mixes currencies and cannot be priced.")
    return PricedCart(lines, currency)


def load_user_cart(user: User) -> Contents:
    rows = db.session.execute(
        select(CartItem.product_id, CartItem.quantity)
        .join(Cart)
        .where(Cart.user_id == user.id)
        .order_by(CartItem.id)
    )
    return {product_id: quantity for product_id, quantity in rows}


def save_user_cart(user: User, contents: Mapping[int, int]) -> None:
    """Replace the user's stored cart with `contents` (not committed)."""
    cart = db.session.scalar(select(Cart).where(Cart.user_id == user.id))
    if cart is None:
        cart = Cart(user_id=user.id)
        db.session.add(cart)
        db.session.flush()
    db.session.execute(delete(CartItem).where(CartItem.cart_id == cart.id))
    for product_id, quantity in contents.items():
        db.session.add(CartItem(cart_id=cart.id, product_id=product_id, quantity=quantity))
    cart.updated_at = clock.now()
