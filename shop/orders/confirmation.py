"""A pending order's step-up answered, as use cases: confirm it with a code or a passkey
(the rules run again first), and a passkey challenge bound to the order. Each owns its
transaction and returns a typed outcome. Sending its SMS code again: `shop.orders.resend`.
"""

from dataclasses import dataclass
from enum import StrEnum

from shop import cart as carts
from shop import clock, locks
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import (
    Factor,
    Order,
    OrderEventKind,
    OrderStatus,
    OtpPurpose,
    User,
)
from shop.orders import lifecycle, timeline
from shop.orders.checkout import (
    CLOSED_MESSAGES,
    checkout_context,
    needs_passkey,
    order_binding,
    order_step_up,
)
from shop.orders.history import find_order
from shop.orders.placement import (
    address_of,
    decide,
    fingerprint,
)
from shop.otp import Check
from shop.risk import Outcome
from shop.stepup import Answer, answers, steps

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
    NOT_ALLOWED = "not_allowed"  # a factor the rules or the account do not allow here
    CLOSED = "closed"  # the order was not waiting for a code
    NOT_FOUND = "not_found"


PHONE_CHANGED = (
    "The account's phone number changed after the shop asked for a code, so the shop will "
    "look at the order again."
)
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


def confirm_order(
    user: User, order_ref: str, code: str | dict, client: Client, *, factor: Factor = Factor.SMS
) -> ConfirmResult:
    """Check the answer (`code`: an SMS or app or recovery code, or a passkey's assertion)
    against the order as it is now, and place it if it proves it.

    The rules run again first: an order they would now hold or block is held or blocked
    whatever the answer. The answer is consumed and the order moved in one transaction, each
    by a conditional UPDATE, so that of any number of concurrent confirms one places it.
    The account's lock is taken first: the order and the counts are read as the last
    request of the account left them.
    """
    locks.hold_account(user.id, fresh=True)
    order = find_order(user, order_ref)
    if order is None:
        return _confirmed(ConfirmOutcome.NOT_FOUND)
    if order.status == OrderStatus.PLACED:
        return _confirmed(ConfirmOutcome.ALREADY_PLACED, order, CLOSED_MESSAGES[order.status])
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return _confirmed(ConfirmOutcome.CLOSED, order, CLOSED_MESSAGES[order.status])
    if lifecycle.lapsed(order):
        if not lifecycle.release(order, OrderStatus.EXPIRED, allowed_from=[order.status]):
            return _lost_race(order, keep=False)
        return _commit(ConfirmOutcome.EXPIRED, order, CLOSED_MESSAGES[OrderStatus.EXPIRED])
    if order.reviewed_at is not None:
        # The owner reviewed it and asked for a code: the owner's decision stands over the
        # rules, and the order's items are fixed since its cart was let go when it was held.
        # Unless the number the code goes to changed since: then the owner looks again.
        if phone_changed_since_review(user, order):
            return held_again(user, order)
        current = order.fingerprint
    else:
        closed = _decide_again(user, order, client)
        if closed is not None:
            return closed
        current = fingerprint(carts.load_user_cart(user), address_of(order))
    if factor != Factor.PASSKEY and needs_passkey(order):
        # Read from the order, not from its step-up: a later checkout's step-up ends this
        # one's, and with it the list of factors it allowed.
        return _commit(ConfirmOutcome.NOT_ALLOWED, order, answers.PASSKEY_ONLY)
    result = answers.verify_any(
        user,
        order_step_up(user, order),
        OtpPurpose.ORDER,
        order_binding(order, current),
        Answer(factor, code),
        client_ip=client.ip,
        order_id=order.id,
    )
    if result.outcome == Check.NOT_ALLOWED:
        return _commit(ConfirmOutcome.NOT_ALLOWED, order, result.message)
    if result.outcome == Check.VERIFIED:
        if lifecycle.confirm(order, user, str(factor)):
            message = f"Thank you! Order {order.ref} is confirmed and placed."
            return _commit(ConfirmOutcome.PLACED, order, message)
        return _lost_race(order, keep=False)  # the code stays unused
    # From here the answer was counted (a wrong try, the account's lock): that is kept even
    # when another request moved the order first.
    if result.outcome == Check.MISMATCH:
        if not lifecycle.release(
            order, OrderStatus.CANCELLED, allowed_from=[order.status], reason="cart_changed"
        ):
            return _lost_race(order)
        return _commit(ConfirmOutcome.CART_CHANGED, order)
    if result.outcome == Check.LOCKED:
        if not lifecycle.hold(order, user, reason="step_up_locked"):
            return _lost_race(order)
        return _commit(ConfirmOutcome.LOCKED, order)
    if result.outcome == Check.EXPIRED:
        if not lifecycle.release(order, OrderStatus.EXPIRED, allowed_from=[order.status]):
            return _lost_race(order)
        return _commit(ConfirmOutcome.EXPIRED, order, CLOSED_MESSAGES[OrderStatus.EXPIRED])
    if result.outcome == Check.TOO_MANY_ATTEMPTS:
        timeline.record(order, OrderEventKind.WRONG_CODE, tries_left=0)
        if not lifecycle.release(
            order, OrderStatus.CANCELLED, allowed_from=[order.status], reason="too_many_tries"
        ):
            return _lost_race(order)
        return _commit(ConfirmOutcome.TOO_MANY_TRIES, order)
    if result.outcome == Check.WRONG:
        # The factor is named when it is not the SMS code (the timeline's default).
        named = {"factor": str(factor)} if factor != Factor.SMS else {}
        timeline.record(order, OrderEventKind.WRONG_CODE, tries_left=result.tries_left, **named)
        return _commit(ConfirmOutcome.WRONG_CODE, order, result.message, result.tries_left)
    return _commit(ConfirmOutcome.CODE_DEAD, order)


def phone_changed_since_review(user: User, order: Order) -> bool:
    """Whether the account's phone number changed after the owner reviewed `order` and
    asked for a code: the owner decided about the old number, so the order is held again
    rather than confirmed by a code sent to, or asked for from, the new one."""
    changed, reviewed = user.phone_changed_at, order.reviewed_at
    return reviewed is not None and changed is not None and changed > reviewed


def held_again(user: User, order: Order) -> ConfirmResult:
    """A reviewed order back in the owner's queue: its number changed since the review."""
    if not lifecycle.hold(order, user, reason="phone_changed"):
        return _lost_race(order)
    return _commit(
        ConfirmOutcome.HELD, order, CLOSED_MESSAGES[OrderStatus.HELD] + " " + PHONE_CHANGED
    )


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
        moved = lifecycle.hold(order, user, reason="rules")
        outcome = ConfirmOutcome.HELD
    else:
        moved = lifecycle.release(order, OrderStatus.BLOCKED, allowed_from=[order.status])
        outcome = ConfirmOutcome.BLOCKED
    if not moved:
        return _lost_race(order, keep=False)
    message = CLOSED_MESSAGES[OrderStatus(order.status)] + " " + decision.shopper_message()
    return _commit(outcome, order, message)


def _lost_race(order: Order, *, keep: bool = True) -> ConfirmResult:
    """Another request moved the order first (a confirm, the expiry sweep, a "not me"):
    say where it is now. `keep`: commit what this request counted, else undo it all."""
    if keep:
        db.session.commit()
    else:
        db.session.rollback()
    db.session.refresh(order)
    if order.status == OrderStatus.PLACED:
        return _confirmed(ConfirmOutcome.ALREADY_PLACED, order, CLOSED_MESSAGES[order.status])
    return _confirmed(ConfirmOutcome.CLOSED, order, "This order was already handled.")


def _confirmed(
    outcome: ConfirmOutcome, order: Order | None = None, message: str = "", tries_left: int = 0
) -> ConfirmResult:
    db.session.rollback()  # nothing (more) to keep: the account's lock goes now, not later
    return ConfirmResult(outcome, order, tries_left, message or CONFIRM_MESSAGES[outcome])


def _commit(
    outcome: ConfirmOutcome, order: Order, message: str = "", tries_left: int = 0
) -> ConfirmResult:
    db.session.commit()
    return _confirmed(outcome, order, message, tries_left)


class OptionsOutcome(StrEnum):
    READY = "ready"
    NOT_PENDING = "not_pending"
    NOT_ALLOWED = "not_allowed"  # no passkey on the account, or the step-up is over
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class PasskeyRequest:
    outcome: OptionsOutcome
    options: dict | None = None
    message: str = ""


def order_passkey_options(user: User, order_ref: str) -> PasskeyRequest:
    """A passkey challenge for the order: derived from what it confirms (ref, amount,
    currency, items, address) and a fresh nonce; single use, 5 minutes."""
    order = find_order(user, order_ref)
    if order is None:
        return PasskeyRequest(OptionsOutcome.NOT_FOUND, message=CONFIRM_MESSAGES["not_found"])
    if order.status != OrderStatus.PENDING_VERIFICATION or lifecycle.lapsed(order):
        message = CLOSED_MESSAGES.get(OrderStatus(order.status), CLOSED_MESSAGES["expired"])
        return PasskeyRequest(OptionsOutcome.NOT_PENDING, message=message)
    step_up = order_step_up(user, order)
    if step_up is None or Factor.PASSKEY not in step_up.factor_list:
        return PasskeyRequest(OptionsOutcome.NOT_ALLOWED, message=answers.NOT_ALLOWED["passkey"])
    options = steps.passkey_options(user, step_up)
    db.session.commit()
    return PasskeyRequest(OptionsOutcome.READY, options)
