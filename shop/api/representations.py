"""Domain objects as the API shows them (plain dicts for the schemas to dump)."""

from typing import Any

from shop import otp
from shop.api.schemas import challenge_data
from shop.extensions import db
from shop.models import Order, OtpChallenge
from shop.money import format_money
from shop.orders import address_of
from shop.orders.checkout import shopper_reason
from shop.risk import Outcome


def challenge_of(challenge: OtpChallenge | None) -> dict[str, Any] | None:
    if challenge is None:
        return None
    order = db.session.get(Order, challenge.order_id) if challenge.order_id else None
    order_ref = order.ref if order is not None else None
    return challenge_data(otp.service().status(challenge), order_ref)


def order_of(
    order: Order, *, challenge: OtpChallenge | None = None, message: str = ""
) -> dict[str, Any]:
    reasons = [
        text
        for outcome in (Outcome.OTP, Outcome.HOLD, Outcome.BLOCK)
        if (text := shopper_reason(order, outcome))
    ]
    return {
        "ref": order.ref,
        "status": order.status,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "total": format_money(order.total_minor, order.currency),
        "created_at": order.created_at,
        "items": order.items,
        "shipping": address_of(order).__dict__,
        "reasons": reasons,
        "message": message,
        "challenge": challenge_of(challenge),
    }
