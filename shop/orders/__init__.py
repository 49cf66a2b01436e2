"""Placing orders: server-side prices, idempotent submits and stock that never goes negative."""

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from shop import alerts, clock
from shop import cart as carts
from shop.extensions import db
from shop.models import Cart, CartItem, Order, OrderItem, OrderStatus, Product, User

# Crockford's base32 without I, L, O, U: easy to read aloud and to type from an SMS.
REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class CheckoutError(Exception):
    """The order cannot be placed; `message` is safe to show and `status` is the HTTP status."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyCart(CheckoutError):
    status = 400


class OutOfStock(CheckoutError):
    status = 409


class IdempotencyConflict(CheckoutError):
    status = 422


@dataclass(frozen=True)
class ShippingAddress:
    full_name: str
    address_line1: str
    city: str
    postal_code: str
    country: str


def new_order_ref() -> str:
    return "SH-" + "".join(secrets.choice(REF_ALPHABET) for _ in range(8))


def fingerprint(contents: dict[int, int], address: ShippingAddress) -> str:
    """What a submit asked for: a replayed idempotency key must ask for the same."""
    canonical = json.dumps(
        {"items": sorted(contents.items()), "address": asdict(address)}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _order_for_key(user: User, key: str) -> Order | None:
    return db.session.scalar(
        select(Order).where(Order.user_id == user.id, Order.idempotency_key == key)
    )


def _replay(order: Order, contents: dict[int, int], address: ShippingAddress) -> Order:
    """The order an earlier submit with this key made, if this submit asks for the same."""
    # An emptied cart is the earlier submit's own doing: the same address is enough.
    asked = fingerprint(contents or _contents_of(order), address)
    if asked != order.fingerprint:
        raise IdempotencyConflict(
            "This checkout form was already used for a different cart or address. "
            "Review your cart and check out again."
        )
    return order


def _contents_of(order: Order) -> dict[int, int]:
    return {item.product_id: item.quantity for item in order.items}


def place_order(
    user: User, address: ShippingAddress, idempotency_key: str, *, currency: str
) -> Order:
    """Turn the user's cart into a placed order, or return the order this key already made.

    Everything happens in one transaction: the order row first (its unique idempotency key
    makes parallel duplicates fail fast), then one conditional stock decrement per line whose
    row count is checked, then the cart is emptied.
    """
    contents = carts.load_user_cart(user)
    existing = _order_for_key(user, idempotency_key)
    if existing is not None:
        return _replay(existing, contents, address)
    priced = carts.price(contents, currency)
    if not priced.lines:
        raise EmptyCart("Your cart is empty.")

    order = Order(
        ref=new_order_ref(),
        user_id=user.id,
        status=OrderStatus.PLACED,
        currency=priced.currency,
        total_minor=priced.total_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint(priced.contents, address),
        **asdict(address),
    )
    db.session.add(order)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = _order_for_key(user, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, contents, address)

    for line in priced.lines:
        taken = db.session.execute(
            update(Product)
            .where(Product.id == line.product.id, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            db.session.rollback()
            raise OutOfStock(
                f"Sorry, there is not enough {line.product.name} left in stock. "
                "Your cart is unchanged and nothing was charged."
            )
        order.items.append(
            OrderItem(
                product_id=line.product.id,
                product_name=line.product.name,
                unit_price_minor=line.product.price_minor,
                quantity=line.quantity,
            )
        )
    db.session.execute(
        delete(CartItem).where(CartItem.cart_id.in_(select(Cart.id).where(Cart.user_id == user.id)))
    )
    alerts.order_placed(user, order)
    db.session.commit()
    return order


OPEN_STATUSES = (OrderStatus.PENDING_VERIFICATION, OrderStatus.PLACED, OrderStatus.HELD)


def cancel_open_orders(user: User) -> list[Order]:
    """Cancel every order of `user` not yet shipped and put its stock back (not committed).

    Each order moves by a conditional UPDATE, so an order confirmed or cancelled at the same
    moment elsewhere is neither cancelled twice nor restocked twice.
    """
    candidates = db.session.scalars(
        select(Order).where(Order.user_id == user.id, Order.status.in_(OPEN_STATUSES))
    ).all()
    cancelled = []
    for order in candidates:
        moved = db.session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status.in_(OPEN_STATUSES))
            .values(status=OrderStatus.CANCELLED, updated_at=clock.now())
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            continue
        for item in order.items:
            db.session.execute(
                update(Product)
                .where(Product.id == item.product_id)
                .values(stock=Product.stock + item.quantity)
                .execution_options(synchronize_session=False)
            )
        cancelled.append(order)
    return cancelled
