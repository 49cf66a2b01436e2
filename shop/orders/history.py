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
