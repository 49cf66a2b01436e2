"""A shopper's orders: the list, and one order by its reference."""

from sqlalchemy import select

from shop.extensions import db
from shop.models import Order, User


def orders_of(user: User, *, limit: int | None = None) -> list[Order]:
    """`user`'s orders, newest first."""
    query = select(Order).where(Order.user_id == user.id).order_by(Order.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def find_order(user: User, order_ref: str) -> Order | None:
    """One of `user`'s orders; someone else's is not found, exactly like a missing one."""
    return db.session.scalar(select(Order).where(Order.ref == order_ref, Order.user_id == user.id))


def orders_before(user: User, before_ref: str | None, limit: int) -> tuple[list[Order], bool]:
    """Up to `limit` of `user`'s orders older than the one named `before_ref` (newest first),
    and whether there are more; keyset, so a page costs the same however far back it is."""
    query = select(Order).where(Order.user_id == user.id)
    if before_ref is not None:
        before = find_order(user, before_ref)
        if before is None:
            return [], False
        query = query.where(Order.id < before.id)
    rows = list(db.session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
