"""Checkout as use cases: start it, confirm a pending order with its code, send a new code.

Each function takes plain values (the user, the address, the `Client`), owns its transaction
and returns a typed outcome; the HTML views and the JSON API only map outcomes to responses.
The walk is downward: cart → risk decision → order → code → SMS text, with no callback into
the web layer.
"""

from dataclasses import dataclass
from enum import StrEnum

from flask import current_app

from shop import cart as carts
from shop import clock, otp, risk
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Order, OrderEventKind, OrderStatus, OtpChallenge, OtpPurpose, User
from shop.orders import lifecycle, timeline
from shop.orders.history import find_order
from shop.orders.placement import (
    CheckoutContext,
    CheckoutError,
    ShippingAddress,
    address_of,
    decide,
    fingerprint,
    place_order,
)
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts
from shop.risk import Outcome


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
        step_up_locked=otp.service().is_locked(user),
    )


REVIEWED_CODE_REASON = "The shop reviewed this order and asks you to confirm it with a code."


def shopper_reason(order: Order, outcome: Outcome | str) -> str:
    """The plain-words reasons that gave `order` this outcome."""
    if outcome == Outcome.OTP and order.reviewed_at is not None:
        return REVIEWED_CODE_REASON
    return " ".join(reason["text"] for reason in order.reasons if reason["outcome"] == outcome)


# Starting a checkout ---------------------------------------------------------------------------


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
    challenge: OtpChallenge | None = None
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
    """
    try:
        placement = place_order(user, address, idempotency_key, checkout_context(user, client))
    except CheckoutError as error:
        db.session.rollback()
        refusal = _REFUSAL_OF_ERROR[type(error).__name__]
        return CheckoutResult(CheckoutOutcome.REFUSED, refusal=refusal, message=error.message)
    order = placement.order
    challenge = None
    if placement.replayed:
        db.session.commit()
        if order.status == OrderStatus.PENDING_VERIFICATION:
            challenge = otp.service().live_challenge(user, OtpPurpose.ORDER)
            if challenge is not None and challenge.order_id != order.id:
                challenge = None
    elif order.status == OrderStatus.PENDING_VERIFICATION:
        try:
            challenge = issue_order_code(order, user, client, resend=False)
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


# Confirming with the code ------------------------------------------------------------------------


class ConfirmOutcome(StrEnum):
    PLACED = "placed"
    ALREADY_PLACED = "already_placed"
    WRONG_CODE = "wrong_code"  # `tries_left` more
    CODE_DEAD = "code_dead"  # no live code for this order: ask for a new one
    TOO_MANY_TRIES = "too_many_tries"  # the order is cancelled
    CART_CHANGED = "cart_changed"  # the cart or address changed: the order is cancelled
    HELD = "held"  # the rules, run again, hold it for the owner
    BLOCKED = "blocked"  # the rules, run again, block it
    LOCKED = "locked"  # too many wrong codes on the account today: the order is held
    EXPIRED = "expired"  # the order lapsed with its code
    CLOSED = "closed"  # the order was not waiting for a code
    NOT_FOUND = "not_found"


CLOSED_MESSAGES = {
    OrderStatus.HELD: "This order is held for the shop's review.",
    OrderStatus.BLOCKED: "This order was not accepted.",
    OrderStatus.CANCELLED: "This order was cancelled.",
    OrderStatus.EXPIRED: "This order expired because its code was not entered in time. "
    "Check out again.",
    OrderStatus.PLACED: "This order is already confirmed.",
}
CONFIRM_MESSAGES = {
    ConfirmOutcome.CODE_DEAD: "There is no code waiting for this order. Ask for a new one.",
    ConfirmOutcome.TOO_MANY_TRIES: "Too many wrong codes: this order was cancelled and nothing "
    "was charged. Check out again.",
    ConfirmOutcome.CART_CHANGED: "Your cart changed after the code was sent, so the code no "
    "longer works and this order was cancelled. Nothing was charged: check out again.",
    ConfirmOutcome.LOCKED: "Too many wrong codes today: SMS verification is locked on this "
    "account. This order is held for the shop's review.",
    ConfirmOutcome.NOT_FOUND: "There is no such order on your account.",
}


@dataclass(frozen=True)
class ConfirmResult:
    outcome: ConfirmOutcome
    order: Order | None = None
    tries_left: int = 0
    message: str = ""


def confirm_order(user: User, order_ref: str, code: str, client: Client) -> ConfirmResult:
    """Check `code` against the order as it is now, and place it if it matches.

    The rules run again first: an order they would now hold or block is held or blocked
    whatever the code. The code is consumed and the order moved in one transaction, each by
    a conditional UPDATE, so that of any number of concurrent confirms one places it.
    """
    order = find_order(user, order_ref)
    if order is None:
        return _confirmed(ConfirmOutcome.NOT_FOUND)
    if order.status == OrderStatus.PLACED:
        return _confirmed(ConfirmOutcome.ALREADY_PLACED, order, CLOSED_MESSAGES[order.status])
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return _confirmed(ConfirmOutcome.CLOSED, order, CLOSED_MESSAGES[order.status])
    if lifecycle.lapsed(order):
        lifecycle.release(order, OrderStatus.EXPIRED, allowed_from=[order.status])
        return _commit(ConfirmOutcome.EXPIRED, order, CLOSED_MESSAGES[OrderStatus.EXPIRED])
    if order.reviewed_at is not None:
        # The owner reviewed it and asked for a code: the owner's decision stands over the
        # rules, and the order's items are fixed since its cart was let go when it was held.
        current = order.fingerprint
    else:
        closed = _decide_again(user, order, client)
        if closed is not None:
            return closed
        current = fingerprint(carts.load_user_cart(user), address_of(order))
    result = otp.service().verify(
        user,
        OtpPurpose.ORDER,
        order_binding(order, current),
        code,
        client_ip=client.ip,
        order_id=order.id,
    )
    if result.outcome == Check.VERIFIED:
        if lifecycle.confirm(order, user):
            message = f"Thank you! Order {order.ref} is confirmed and placed."
            return _commit(ConfirmOutcome.PLACED, order, message)
        db.session.rollback()
        db.session.refresh(order)
        if order.status == OrderStatus.PLACED:
            return _confirmed(ConfirmOutcome.ALREADY_PLACED, order, CLOSED_MESSAGES[order.status])
        return _confirmed(ConfirmOutcome.CLOSED, order, "This order was already handled.")
    if result.outcome == Check.MISMATCH:
        lifecycle.release(
            order, OrderStatus.CANCELLED, allowed_from=[order.status], reason="cart_changed"
        )
        return _commit(ConfirmOutcome.CART_CHANGED, order)
    if result.outcome == Check.LOCKED:
        lifecycle.hold(order, user, reason="step_up_locked")
        return _commit(ConfirmOutcome.LOCKED, order)
    if result.outcome == Check.EXPIRED:
        lifecycle.release(order, OrderStatus.EXPIRED, allowed_from=[order.status])
        return _commit(ConfirmOutcome.EXPIRED, order, CLOSED_MESSAGES[OrderStatus.EXPIRED])
    if result.outcome == Check.TOO_MANY_ATTEMPTS:
        timeline.record(order, OrderEventKind.WRONG_CODE, tries_left=0)
        lifecycle.release(
            order, OrderStatus.CANCELLED, allowed_from=[order.status], reason="too_many_tries"
        )
        return _commit(ConfirmOutcome.TOO_MANY_TRIES, order)
    if result.outcome == Check.WRONG:
        timeline.record(order, OrderEventKind.WRONG_CODE, tries_left=result.tries_left)
        return _commit(ConfirmOutcome.WRONG_CODE, order, result.message, result.tries_left)
    return _commit(ConfirmOutcome.CODE_DEAD, order)


def _decide_again(user: User, order: Order, client: Client) -> ConfirmResult | None:
    """Run the rules again on a pending order; hold or block it if they now say so."""
    decision, _ = decide(
        user, order.total_minor, address_of(order), checkout_context(user, client), clock.now()
    )
    if decision.outcome not in (Outcome.HOLD, Outcome.BLOCK):
        return None
    lifecycle.record_decision(order, decision)
    timeline.record_decision(order, decision, stage="confirmation")
    if decision.outcome == Outcome.HOLD:
        lifecycle.hold(order, user, reason="rules")
        outcome = ConfirmOutcome.HELD
    else:
        lifecycle.release(order, OrderStatus.BLOCKED, allowed_from=[order.status])
        outcome = ConfirmOutcome.BLOCKED
    message = CLOSED_MESSAGES[OrderStatus(order.status)] + " " + decision.shopper_message()
    return _commit(outcome, order, message)


def _confirmed(
    outcome: ConfirmOutcome, order: Order | None = None, message: str = "", tries_left: int = 0
) -> ConfirmResult:
    return ConfirmResult(outcome, order, tries_left, message or CONFIRM_MESSAGES[outcome])


def _commit(
    outcome: ConfirmOutcome, order: Order, message: str = "", tries_left: int = 0
) -> ConfirmResult:
    db.session.commit()
    return _confirmed(outcome, order, message, tries_left)


# A new code ------------------------------------------------------------------------------------


class ResendOutcome(StrEnum):
    SENT = "sent"
    REFUSED = "refused"  # inside the cool-down, or past a cap: see `send`
    NOT_PENDING = "not_pending"  # the order no longer waits for a code
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ResendResult:
    outcome: ResendOutcome
    order: Order | None = None
    send: CodeSend | None = None

    @property
    def message(self) -> str:
        if self.send is not None:
            return self.send.message
        if self.outcome == ResendOutcome.NOT_FOUND:
            return CONFIRM_MESSAGES[ConfirmOutcome.NOT_FOUND]
        return CLOSED_MESSAGES.get(OrderStatus(self.order.status), "")


def resend_order_code(user: User, order_ref: str, client: Client) -> ResendResult:
    """Replace the order's code with a new one (same tries left); the order lapses with it."""
    order = find_order(user, order_ref)
    if order is None:
        return ResendResult(ResendOutcome.NOT_FOUND)
    if order.status != OrderStatus.PENDING_VERIFICATION or lifecycle.lapsed(order):
        return ResendResult(ResendOutcome.NOT_PENDING, order)
    try:
        challenge = issue_order_code(order, user, client, resend=True)
    except SendRefused as refused:
        send = otp.service().refused(refused)
        return ResendResult(ResendOutcome.REFUSED, order, send)
    db.session.commit()
    return ResendResult(ResendOutcome.SENT, order, CodeSend.of(challenge))


def order_challenge(user: User, order: Order) -> OtpChallenge | None:
    """The live code of a pending order, if any."""
    challenge = otp.service().live_challenge(user, OtpPurpose.ORDER)
    return challenge if challenge is not None and challenge.order_id == order.id else None


def order_resend_blocker(user: User, order: Order, client: Client) -> SendRefused | None:
    """Why "send a new code" would be refused now (the cool-down aside), if it would."""
    return otp.service().resend_blocker(
        user, OtpPurpose.ORDER, order_binding(order), client_ip=client.ip
    )
