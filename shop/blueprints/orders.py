"""A shopper's orders: the history and one confirmation page per order."""

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from shop.extensions import db
from shop.models import Order

bp = Blueprint("orders", __name__, url_prefix="/orders")


@bp.get("")
@login_required
def history() -> str:
    user_orders = db.session.scalars(
        select(Order).where(Order.user_id == current_user.id).order_by(Order.id.desc())
    ).all()
    return render_template("orders/history.html", orders=user_orders)


@bp.get("/<order_ref>")
@login_required
def detail(order_ref: str) -> str:
    order = db.session.scalar(
        select(Order).where(Order.ref == order_ref, Order.user_id == current_user.id)
    )
    if order is None:
        # Someone else's order looks exactly like one that does not exist.
        abort(404, description="There is no such order on your account.")
    return render_template("orders/detail.html", order=order)
