"""Domain objects as the API shows them (plain dicts for the schemas to dump)."""

from typing import Any

from shop import accounts, clock, otp
from shop.api.challenge_schemas import challenge_data
from shop.extensions import db
from shop.models import Order, OtpChallenge, StepUp, User
from shop.money import format_money
from shop.orders import address_of
from shop.orders.checkout import shopper_reason
from shop.otp import challenges
from shop.risk import Outcome
from shop.stepup import steps


def challenge_of(challenge: OtpChallenge | StepUp | None) -> dict[str, Any] | None:
    """An SMS code, or an order's step-up not (yet) answered by SMS, as the API shows it."""
    if challenge is None:
        return None
    order = db.session.get(Order, challenge.order_id) if challenge.order_id else None
    order_ref = order.ref if order is not None else None
    if isinstance(challenge, StepUp):
        return _step_up_of(challenge, order_ref)
    step_up = steps.live_step_up(db.session.get(User, challenge.user_id), challenge.purpose)
    # The step-up this code belongs to (an order's, or an API sign-in's) names the factors.
    same = step_up is not None and (
        step_up.order_id == order.id if order is not None else step_up.binding == challenge.binding
    )
    factors = step_up.factors.split(",") if same else ["sms"]
    status = challenges.status(challenge, otp.service().policy)
    return challenge_data(status, order_ref, factors)


def _step_up_of(step_up: StepUp, order_ref: str | None) -> dict[str, Any]:
    now = clock.now()
    user = db.session.get(User, step_up.user_id)
    live = step_up.consumed_at is None and step_up.ended_at is None and now < step_up.expires_at
    return {
        "id": step_up.public_id,
        "purpose": step_up.purpose,
        "masked_phone": accounts.mask_phone(user.phone),
        "live": live,
        "end_reason": step_up.end_reason,
        "send_at": None,
        "expires_at": step_up.expires_at,
        "queued_seconds": 0,
        "expires_in_seconds": max(0, int((step_up.expires_at - now).total_seconds() + 0.999)),
        "resend_in_seconds": 0,
        "tries_left": steps.tries_left(step_up),
        "delivery": None,
        "order_ref": order_ref,
        "factors": step_up.factors.split(","),
    }


def order_of(
    order: Order, *, challenge: OtpChallenge | StepUp | None = None, message: str = ""
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
