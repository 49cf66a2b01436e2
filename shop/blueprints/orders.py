"""A shopper's orders: the history and one confirmation page per order."""

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from shop.orders import timeline
from shop.orders.history import find_order, orders_of

bp = Blueprint("orders", __name__, url_prefix="/orders")


@bp.get("")
@login_required
def history() -> str:
    return render_template("orders/history.html", orders=orders_of(current_user))


@bp.get("/<order_ref>")
@login_required
def detail(order_ref: str) -> str:
    order = find_order(current_user, order_ref)
    if order is None:
        # Someone else's order looks exactly like one that does not exist.
        abort(404, description="There is no such order on your account.")
    return render_template("orders/detail.html", order=order, timeline=timeline.for_shopper(order))
