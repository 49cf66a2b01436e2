"""An order after checkout: confirmed by its code, held, expired or cancelled.

Every move is one conditional UPDATE on the order's status, so two requests racing on the
same order (20 confirms of one code, a confirm and a "not me") move it once, and stock is
put back at most once.
"""

import json
from collections.abc import Iterable

from sqlalchemy import delete, select, update

from shop import alerts, clock
from shop.extensions import db
from shop.models import Cart, CartItem, Order, OrderEventKind, OrderStatus, Product, User
from shop.models.order import pending
from shop.orders import timeline
from shop.risk import RiskDecision

# States whose order holds stock; the first is waiting for its code.
OPEN_STATUSES = (OrderStatus.PENDING_VERIFICATION, OrderStatus.PLACED, OrderStatus.HELD)
# The timeline event of each way an order that held stock can end.
ENDED = {
    OrderStatus.CANCELLED: OrderEventKind.CANCELLED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
    OrderStatus.BLOCKED: OrderEventKind.BLOCKED,
}


def lapsed(order: Order) -> bool:
    """A pending order whose code ran out (the delivery process will expire it)."""
    return (
        order.status == OrderStatus.PENDING_VERIFICATION
        and order.expires_at is not None
        and clock.now() >= order.expires_at
    )


def move(order: Order, to: OrderStatus, *, allowed_from: Iterable[OrderStatus], **values) -> bool:
    """Move `order` to `to` if it is still in one of `allowed_from`; True if this call did."""
    moved = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(list(allowed_from)))
        .values(status=to, updated_at=clock.now(), **values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        return False
    db.session.refresh(order)
    return True


def restock(order: Order) -> None:
    for item in order.items:
        db.session.execute(
            update(Product)
            .where(Product.id == item.product_id)
            .values(stock=Product.stock + item.quantity)
            .execution_options(synchronize_session=False)
        )
    timeline.record(order, OrderEventKind.RELEASED, items=sum(i.quantity for i in order.items))


def release(
    order: Order,
    to: OrderStatus,
    *,
    allowed_from: Iterable[OrderStatus],
    reason: str | None = None,
    actor_id: int | None = None,
    note: str | None = None,
    facts: dict | None = None,
    **values,
) -> bool:
    """End an order that held stock (cancelled, expired, blocked) and put its stock back.

    `reason`, `actor_id`, `note` and `facts` go on the timeline; `values` are set on the
    order with its new status.
    """
    if not move(order, to, allowed_from=allowed_from, **values):
        return False
    timeline.record(order, ENDED[to], actor_id=actor_id, note=note, reason=reason, **(facts or {}))
    restock(order)
    return True


def empty_cart(user: User) -> None:
    db.session.execute(
        delete(CartItem).where(CartItem.cart_id.in_(select(Cart.id).where(Cart.user_id == user.id)))
    )


def record_decision(order: Order, decision: RiskDecision) -> None:
    """Keep every reason that fired, including those of a later re-evaluation."""
    reasons = order.reasons + [
        {
            "code": reason.code,
            "outcome": str(reason.outcome),
            "text": reason.text,
            "factor": reason.factor,
        }
        for reason in decision.reasons
    ]
    order.risk_reasons = json.dumps(reasons)
    order.risk_outcome = str(decision.outcome)


def _let_go_of_cart(order: Order, user: User) -> None:
    """The cart became this order: empty it. An order the owner sent back for a code was
    made from an earlier cart, long emptied; the cart now is the shopper's next one."""
    if order.reviewed_at is None:
        empty_cart(user)


def confirm(order: Order, user: User, factor: str = "sms") -> bool:
    """A pending order whose step-up was answered (by `factor`) becomes placed (the caller
    commits)."""
    if not move(
        order,
        OrderStatus.PLACED,
        allowed_from=[OrderStatus.PENDING_VERIFICATION],
        step_up_verified_at=clock.now(),
        step_up_factor=factor,
        expires_at=None,
    ):
        return False
    timeline.record(order, OrderEventKind.CONFIRMED, factor=factor)
    _let_go_of_cart(order, user)
    alerts.order_placed(user, order)
    return True


def held(order: Order, user: User, *, reason: str) -> None:
    """What follows an order being held, at checkout or later (the caller commits): the
    cart is let go, the shopper is told, the owners who asked for it get an SMS."""
    timeline.record(order, OrderEventKind.HELD, reason=reason)
    _let_go_of_cart(order, user)
    alerts.order_placed(user, order)
    alerts.order_held_for_owners(order)


def hold(order: Order, user: User, *, reason: str) -> bool:
    """A pending order goes to the owner's review instead (the caller commits)."""
    if not move(order, OrderStatus.HELD, allowed_from=[OrderStatus.PENDING_VERIFICATION]):
        return False
    held(order, user, reason=reason)
    return True


def expire_pending(now=None) -> int:
    """Expire pending orders whose code lapsed and give their stock back, each order in a
    transaction of its own: one order's products are locked in id order, as a checkout
    locks them, where two orders' in one transaction could wait on a checkout in a cycle."""
    now = now or clock.now()
    stale = db.session.scalars(
        select(Order).where(pending(), Order.expires_at <= now).order_by(Order.id)
    ).all()
    expired = 0
    for order in stale:
        expired += release(
            order, OrderStatus.EXPIRED, allowed_from=[OrderStatus.PENDING_VERIFICATION]
        )
        db.session.commit()
    return expired


def cancel_open_orders(user: User) -> list[Order]:
    """Cancel every order of `user` not yet shipped and put its stock back (not committed)."""
    # The orders' rows, then their products, each in id order (PostgreSQL; SQLite has one
    # write lock): the order a sweep or a review takes one order's row and products in, and
    # a checkout its products. Order by order, two orders' products could come in another.
    candidates = db.session.scalars(
        select(Order)
        .where(Order.user_id == user.id, Order.status.in_(OPEN_STATUSES))
        .order_by(Order.id)
        .with_for_update()
    ).all()
    products = sorted({item.product_id for order in candidates for item in order.items})
    if products:
        db.session.execute(
            select(Product.id)
            .where(Product.id.in_(products))
            .order_by(Product.id)
            .with_for_update()
        )
    return [
        order
        for order in candidates
        if release(order, OrderStatus.CANCELLED, allowed_from=OPEN_STATUSES, reason="not_me")
    ]
