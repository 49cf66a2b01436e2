"""Checkout as a use case: start it (the risk decision, the order, its step-up and code).

Each function takes plain values (the user, the address, the `Client`), owns its transaction
and returns a typed outcome; the HTML views and the JSON API only map outcomes to responses.
The walk is downward: cart → risk decision → order → code → SMS text, with no callback into
the web layer. Answering the step-up of a pending order is `shop.orders.confirmation`.
"""

from dataclasses import dataclass
from enum import StrEnum

from flask import current_app

from shop import clock, locks, otp, risk
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import (
    Order,
    OrderStatus,
    OtpChallenge,
    OtpPurpose,
    StepUp,
    User,
)
from shop.orders.placement import (
    CheckoutContext,
    CheckoutError,
    ShippingAddress,
    place_order,
)
from shop.otp import SendRefused, binding_for, texts
from shop.risk import Outcome
from shop.stepup import passkeys, steps


def order_binding(order: Order, fingerprint: str | None = None) -> str:
    """What an order's code confirms: this order, this amount, these items to this address.

    `fingerprint` is the order's items and address as they are now; by default, as they were
    when the order was made.
    """
    return binding_for(
        "order", order.ref, order.total_minor, order.currency, fingerprint or order.fingerprint
    )


def checkout_context(user: User, client: Client) -> CheckoutContext:
    return CheckoutContext(
        currency=current_app.config["SHOP_CURRENCY"],
        rules=risk.current_rules(),
        device_id=client.device_id,
        step_up_locked=otp.service().lockout.is_locked(user),
        has_passkey=bool(passkeys.passkeys_of(user)),
    )


REVIEWED_CODE_REASON = "The shop reviewed this order and asks you to confirm it with a code."


def shopper_reason(order: Order, outcome: Outcome | str) -> str:
    """The plain-words reasons that gave `order` this outcome."""
    if outcome == Outcome.OTP and order.reviewed_at is not None:
        return REVIEWED_CODE_REASON
    return " ".join(reason["text"] for reason in order.reasons if reason["outcome"] == outcome)


# Starting a checkout ---------------------------------------------------------------------------


# What a shopper is told of an order no longer waiting for its code.
CLOSED_MESSAGES = {
    OrderStatus.HELD: "This order is held for the shop's review.",
    OrderStatus.BLOCKED: "This order was not accepted.",
    OrderStatus.CANCELLED: "This order was cancelled.",
    OrderStatus.EXPIRED: "This order expired because its code was not entered in time. "
    "Check out again.",
    OrderStatus.PLACED: "This order is already confirmed.",
}


class CheckoutOutcome(StrEnum):
    PLACED = "placed"
    CODE_SENT = "code_sent"  # pending its code (sent now, or queued for the cool-down)
    HELD = "held"  # waiting for the owner's review
    BLOCKED = "blocked"
    CLOSED = "closed"  # a replayed key whose order has since been cancelled or expired
    REFUSED = "refused"  # no order: see `refusal`


class CheckoutRefusal(StrEnum):
    EMPTY_CART = "empty_cart"
    OUT_OF_STOCK = "out_of_stock"
    KEY_REUSED = "key_reused"  # the same idempotency key with another cart or address
    CODE_NOT_SENT = "code_not_sent"  # the order needs a code and none may be sent now


_OUTCOME_OF_STATUS = {
    OrderStatus.PLACED: CheckoutOutcome.PLACED,
    OrderStatus.PENDING_VERIFICATION: CheckoutOutcome.CODE_SENT,
    OrderStatus.HELD: CheckoutOutcome.HELD,
    OrderStatus.BLOCKED: CheckoutOutcome.BLOCKED,
    OrderStatus.CANCELLED: CheckoutOutcome.CLOSED,
    OrderStatus.EXPIRED: CheckoutOutcome.CLOSED,
}
_REFUSAL_OF_ERROR = {
    "EmptyCart": CheckoutRefusal.EMPTY_CART,
    "OutOfStock": CheckoutRefusal.OUT_OF_STOCK,
    "IdempotencyConflict": CheckoutRefusal.KEY_REUSED,
}


@dataclass(frozen=True)
class CheckoutResult:
    outcome: CheckoutOutcome
    order: Order | None = None
    challenge: OtpChallenge | None = None  # the SMS code, when one was sent at once
    step_up: StepUp | None = None
    refusal: CheckoutRefusal | None = None
    send_refused: SendRefused | None = None
    message: str = ""
    replayed: bool = False

    @property
    def code_queued(self) -> bool:
        return self.challenge is not None and self.challenge.send_at > self.challenge.created_at


def start_checkout(
    user: User, address: ShippingAddress, idempotency_key: str, client: Client
) -> CheckoutResult:
    """Price the cart on the server, decide, and place, hold, block or ask for a code.

    A repeated `idempotency_key` with the same cart and address answers with the order the
    first submit made; with another cart or address it is refused (KEY_REUSED).
    The account's lock is taken first: what the decision counts is as the request before
    left it.
    """
    locks.hold_account(user.id, fresh=True)
    try:
        placement = place_order(user, address, idempotency_key, checkout_context(user, client))
    except CheckoutError as error:
        db.session.rollback()
        refusal = _REFUSAL_OF_ERROR[type(error).__name__]
        return CheckoutResult(CheckoutOutcome.REFUSED, refusal=refusal, message=error.message)
    order = placement.order
    challenge = step_up = None
    if placement.replayed:
        db.session.commit()
        if order.status == OrderStatus.PENDING_VERIFICATION:
            challenge = order_challenge(user, order)
            step_up = order_step_up(user, order)
    elif order.status == OrderStatus.PENDING_VERIFICATION:
        try:
            step_up, challenge = open_order_step_up(order, user, client)
        except SendRefused as refused:
            otp.service().refused(refused)
            return CheckoutResult(
                CheckoutOutcome.REFUSED,
                refusal=CheckoutRefusal.CODE_NOT_SENT,
                send_refused=refused,
                message=refused.message,
            )
        db.session.commit()
    else:
        db.session.commit()
    outcome = _OUTCOME_OF_STATUS[OrderStatus(order.status)]
    return CheckoutResult(
        outcome,
        order=order,
        challenge=challenge,
        step_up=step_up,
        message=_checkout_message(order, outcome),
        replayed=placement.replayed,
    )


def _checkout_message(order: Order, outcome: CheckoutOutcome) -> str:
    if outcome == CheckoutOutcome.PLACED:
        return f"Thank you! Order {order.ref} is placed."
    if outcome == CheckoutOutcome.CODE_SENT:
        return shopper_reason(order, Outcome.OTP) or "This order needs a code."
    if outcome == CheckoutOutcome.HELD:
        return f"Order {order.ref} is held for the shop's review. " + shopper_reason(
            order, Outcome.HOLD
        )
    if outcome == CheckoutOutcome.BLOCKED:
        return "We cannot accept this order online. " + shopper_reason(order, Outcome.BLOCK)
    return CLOSED_MESSAGES[OrderStatus(order.status)]


def needs_passkey(order: Order) -> bool:
    """Whether the owner's rules let only a passkey confirm this order (never once the owner
    reviewed it and asked for a code)."""
    return order.reviewed_at is None and any(
        reason.get("factor") == "passkey" and reason["outcome"] == Outcome.OTP
        for reason in order.reasons
    )


def open_order_step_up(
    order: Order, user: User, client: Client
) -> tuple[StepUp, OtpChallenge | None]:
    """The order's step-up with every factor the account has and the rules allow (not
    committed); its SMS code goes out at once only when SMS is the only one. Raises
    SendRefused."""
    factors = steps.allowed_factors(user, passkey_only=needs_passkey(order))
    expires_at = clock.now() + otp.service().policy.validity
    step_up = steps.open_step_up(
        user,
        OtpPurpose.ORDER,
        order_binding(order),
        factors,
        expires_at=expires_at,
        order_id=order.id,
    )
    order.expires_at = expires_at
    challenge = None
    if not factors or steps.sms_at_once(factors):
        challenge = issue_order_code(order, user, client, resend=False)
        steps.extend(step_up, challenge.expires_at)
    return step_up, challenge


def issue_order_code(
    order: Order, user: User, client: Client, *, resend: bool, by_owner: bool = False
) -> OtpChallenge:
    """Queue the order's code (not committed); the pending order lapses with it. Raises
    SendRefused. `by_owner`: an owner's review asks for it (see `Otp.issue`)."""
    challenge = otp.service().issue(
        user,
        OtpPurpose.ORDER,
        order_binding(order),
        client_ip=client.ip,
        text=texts.order_code(order),
        order_id=order.id,
        resend=resend,
        by_owner=by_owner,
    )
    order.expires_at = challenge.expires_at
    return challenge


def order_challenge(user: User, order: Order) -> OtpChallenge | None:
    """The live code of a pending order, if any."""
    challenge = otp.live_challenge(user, OtpPurpose.ORDER)
    return challenge if challenge is not None and challenge.order_id == order.id else None


def order_step_up(user: User, order: Order) -> StepUp | None:
    """The live step-up of a pending order, if any."""
    step_up = steps.live_step_up(user, OtpPurpose.ORDER)
    return step_up if step_up is not None and step_up.order_id == order.id else None


def order_resend_blocker(user: User, order: Order, client: Client) -> SendRefused | None:
    """Why "send a new code" would be refused now (the cool-down aside), if it would."""
    return otp.service().resend_blocker(
        user, OtpPurpose.ORDER, order_binding(order), client_ip=client.ip
    )
