"""API: checkout, with an `Idempotency-Key` header (the same key and body answer the same)."""

from flask import url_for

from shop.api import Blueprint, challenge_links, errors
from shop.api.auth import require_user
from shop.api.problems import ApiProblem, code_not_sent
from shop.api.representations import order_of
from shop.api.schemas import IdempotencyHeaderSchema, OrderSchema, ShippingAddressSchema
from shop.orders import ShippingAddress
from shop.orders.checkout import CheckoutOutcome, CheckoutRefusal, start_checkout
from shop.web.client import current_client

blp = Blueprint("api_checkout", __name__, url_prefix="/api/v1", description="Checking out.")
SECURITY = [{"bearer": []}, {"session": []}]

REFUSALS = {
    CheckoutRefusal.EMPTY_CART: 409,
    CheckoutRefusal.OUT_OF_STOCK: 409,
    CheckoutRefusal.KEY_REUSED: 422,
}
ORDER_LINK = {
    "GetOrder": {"operationId": "getOrder", "parameters": {"order_ref": "$response.body#/ref"}}
}


@blp.post("/checkout")
@blp.doc(
    operationId="checkout",
    security=SECURITY,
    responses={
        "201": {"links": ORDER_LINK},
        "202": {"links": {**challenge_links("#/challenge/id", resend=True), **ORDER_LINK}},
    },
)
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(ShippingAddressSchema)
@blp.response(201, OrderSchema, description="Placed, or held for the shop's review")
@blp.alt_response(
    202, schema=OrderSchema, description="Waiting for its code: see `challenge`", success=True
)
@errors(blp, 401, 403, 409, 422, 429)
def checkout(address: dict, idempotency_key: str):
    """Price the cart on the server and place the order, hold it, or ask for a code."""
    user = require_user()
    result = start_checkout(user, ShippingAddress(**address), idempotency_key, current_client())
    if result.outcome == CheckoutOutcome.REFUSED:
        if result.send_refused is not None:
            raise code_not_sent(result.send_refused)
        raise ApiProblem(REFUSALS[result.refusal], result.message, name=str(result.refusal))
    order = result.order
    if result.outcome == CheckoutOutcome.BLOCKED:
        raise ApiProblem(403, result.message, name="blocked", order_ref=order.ref)
    # With a passkey or an app on the account no SMS went out: the challenge is the step-up.
    challenge = result.challenge or result.step_up
    body = order_of(order, challenge=challenge, message=result.message)
    if result.outcome == CheckoutOutcome.CODE_SENT and challenge is not None:
        location = url_for("api_challenges.challenge", challenge_id=challenge.public_id)
        return body, 202, {"Location": location}
    return body, 201, {"Location": url_for("api_orders.order", order_ref=order.ref)}
