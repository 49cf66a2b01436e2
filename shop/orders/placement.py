"""Placing orders: server-side prices, the risk decision, idempotent submits, safe stock.

`place_order` writes the order in the caller's transaction and commits nothing; the
checkout use cases (`shop.orders.checkout`) add the code or the alert and commit.
"""

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shop import alerts, clock, locks, risk
from shop import cart as carts
from shop.extensions import db
from shop.models import Order, OrderEventKind, OrderItem, OrderStatus, Product, User
from shop.orders import timeline
from shop.orders.lifecycle import empty_cart, held, record_decision
from shop.risk import Outcome, RiskRules

# Crockford's base32 without I, L, O, U: easy to read aloud and to type from an SMS.
REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STATUS_FOR = {
    Outcome.ALLOW: OrderStatus.PLACED,
    Outcome.OTP: OrderStatus.PENDING_VERIFICATION,
    Outcome.HOLD: OrderStatus.HELD,
    Outcome.BLOCK: OrderStatus.BLOCKED,
}


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

    @property
    def key(self) -> str:
        return risk.address_key(self.address_line1, self.city, self.postal_code, self.country)


@dataclass(frozen=True)
class CheckoutContext:
    """What the risk decision needs beyond the cart and the address."""

    currency: str
    rules: RiskRules = field(default_factory=RiskRules)
    device_id: str | None = None
    step_up_locked: bool = False
    has_passkey: bool = False  # rules that ask for a passkey hold the order without one


def new_order_ref() -> str:
    return "SH-" + "".join(secrets.choice(REF_ALPHABET) for _ in range(8))


def fingerprint(contents: dict[int, int], address: ShippingAddress) -> str:
    """What a submit asked for: a replayed idempotency key must ask for the same."""
    canonical = json.dumps(
        {"items": sorted(contents.items()), "address": asdict(address)}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def address_of(order: Order) -> ShippingAddress:
    return ShippingAddress(
        order.full_name, order.address_line1, order.city, order.postal_code, order.country
    )


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


def decide(
    user: User, total_minor: int, address: ShippingAddress, context: CheckoutContext, now: datetime
) -> tuple[risk.RiskDecision, risk.RiskInputs]:
    inputs = risk.gather_inputs(
        user,
        total_minor=total_minor,
        device_id=context.device_id,
        address=address.key,
        now=now,
        step_up_locked=context.step_up_locked,
        has_passkey=context.has_passkey,
    )
    return risk.evaluate(inputs, context.rules, now), inputs


@dataclass(frozen=True)
class Placement:
    order: Order
    replayed: bool = False  # an earlier submit with the same key made it


def place_order(
    user: User, address: ShippingAddress, idempotency_key: str, context: CheckoutContext
) -> Placement:
    """Turn the user's cart into an order, or find the order this key already made.

    The risk decision on the server-computed total sets the order's state: placed, pending
    its code, held for the owner, or blocked. The order row first (its unique idempotency
    key makes parallel duplicates fail fast), then one conditional stock decrement per line
    whose row count is checked; a placed or held order empties the cart and alerts. Not
    committed: the caller adds the code of a pending order and commits.
    """
    # One checkout of an account at a time: the velocity and exemption rules count the
    # account's recent orders, which a parallel checkout would not see.
    locks.hold_account(user.id)
    contents = carts.load_user_cart(user)
    existing = _order_for_key(user, idempotency_key)
    if existing is not None:
        return Placement(_replay(existing, contents, address), replayed=True)
    priced = carts.price(contents, context.currency)
    if not priced.lines:
        raise EmptyCart("Your cart is empty.")
    now = clock.now()
    decision, inputs = decide(user, priced.total_minor, address, context, now)

    order = Order(
        ref=new_order_ref(),
        user_id=user.id,
        status=STATUS_FOR[decision.outcome],
        currency=priced.currency,
        total_minor=priced.total_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint(priced.contents, address),
        risk_inputs=json.dumps(inputs.to_json()),
        device_id=context.device_id,
        address_key=address.key,
        **asdict(address),
    )
    record_decision(order, decision)
    db.session.add(order)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = _order_for_key(user, idempotency_key)
        if existing is None:
            raise
        return Placement(_replay(existing, contents, address), replayed=True)
    db.session.add(risk.replay.record_inputs(order, inputs))

    for line in priced.lines:
        order.items.append(
            OrderItem(
                product_id=line.product.id,
                product_name=line.product.name,
                unit_price_minor=line.product.price_minor,
                quantity=line.quantity,
            )
        )
        if decision.outcome == Outcome.BLOCK:
            continue
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

    timeline.record_submitted(order)
    timeline.record_decision(order, decision, stage="checkout")
    # A pending order keeps the cart as it is until the code confirms it: a change to it
    # before then kills the code.
    if decision.outcome == Outcome.ALLOW:
        empty_cart(user)
        alerts.order_placed(user, order)
    elif decision.outcome == Outcome.HOLD:
        held(order, user, reason="rules")
    elif decision.outcome == Outcome.BLOCK:
        timeline.record(order, OrderEventKind.BLOCKED)
    return Placement(order)
