"""API: the account's orders."""

from flask import url_for

from shop.api import Blueprint, errors
from shop.api.auth import require_user
from shop.api.problems import ApiProblem
from shop.api.representations import order_of
from shop.api.schemas import OrderPageArgs, OrderPageSchema, OrderSchema
from shop.orders.checkout import order_challenge, order_step_up
from shop.orders.history import find_order, orders_before

blp = Blueprint("api_orders", __name__, url_prefix="/api/v1", description="The account's orders.")
SECURITY = [{"bearer": []}, {"session": []}]


@blp.get("/orders")
@blp.doc(operationId="listOrders", security=SECURITY)
@blp.arguments(OrderPageArgs, location="query")
@blp.response(200, OrderPageSchema)
@errors(blp, 401, 429)
def orders(args: dict):
    """The account's orders, newest first, a page at a time (follow `next`)."""
    user = require_user()
    page, more = orders_before(user, args.get("before"), args["limit"])
    following = (
        url_for("api_orders.orders", before=page[-1].ref, limit=args["limit"]) if more else None
    )
    return {"items": [order_of(order) for order in page], "next": following}


@blp.get("/orders/<order_ref>")
@blp.doc(operationId="getOrder", security=SECURITY)
@blp.response(200, OrderSchema)
@errors(blp, 401, 404, 429)
def order(order_ref: str):
    """One order; a pending one carries its live challenge."""
    user = require_user()
    found = find_order(user, order_ref[:16])
    if found is None:
        raise ApiProblem(404, "There is no such order on your account.", name="not_found")
    challenge = order_challenge(user, found) or order_step_up(user, found)
    return order_of(found, challenge=challenge)
