"""A pending order's SMS code sent again, or for the first time when the shopper asks for
it instead of a passkey or an app: a use case that owns its transaction."""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from shop import locks, otp
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Factor, Order, OrderStatus, OtpChallenge, User
from shop.orders import lifecycle
from shop.orders.checkout import CLOSED_MESSAGES, issue_order_code, needs_passkey, order_step_up
from shop.orders.confirmation import (
    CONFIRM_MESSAGES,
    PHONE_CHANGED,
    ConfirmOutcome,
    held_again,
    phone_changed_since_review,
)
from shop.orders.history import find_order
from shop.otp import CodeSend, SendRefused
from shop.stepup import answers, steps


class ResendOutcome(StrEnum):
    SENT = "sent"
    REFUSED = "refused"  # inside the cool-down, or past a cap: see `send`
    NOT_PENDING = "not_pending"  # the order no longer waits for a code
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"  # only a passkey may confirm this order
    HELD = "held"  # the number changed since the owner asked for a code: held again


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
        if self.outcome == ResendOutcome.NOT_ALLOWED:
            return answers.PASSKEY_ONLY
        if self.outcome == ResendOutcome.HELD:
            return CLOSED_MESSAGES[OrderStatus.HELD] + " " + PHONE_CHANGED
        return CLOSED_MESSAGES.get(OrderStatus(self.order.status), "")


def resend_order_code(user: User, order_ref: str, client: Client) -> ResendResult:
    """Send the order's code by SMS: the first one, when the shopper asks for it instead of a
    passkey or an app, or a new one replacing the last (same tries left). The order lapses
    with it."""
    locks.hold_account(user.id, fresh=True)  # a confirm of the order commits first, or waits
    order = find_order(user, order_ref)
    if order is None:
        return _unsent(ResendOutcome.NOT_FOUND)
    if order.status != OrderStatus.PENDING_VERIFICATION or lifecycle.lapsed(order):
        return _unsent(ResendOutcome.NOT_PENDING, order)
    step_up = order_step_up(user, order)
    if needs_passkey(order) or (step_up is not None and Factor.SMS not in step_up.factor_list):
        return _unsent(ResendOutcome.NOT_ALLOWED, order)
    if phone_changed_since_review(user, order):
        held = held_again(user, order)
        outcome = (
            ResendOutcome.HELD if held.outcome == ConfirmOutcome.HELD else ResendOutcome.NOT_PENDING
        )
        return ResendResult(outcome, order)
    # The first SMS of an order the shopper asks for is no "resend": inside the number's
    # cool-down it is queued, as at checkout, rather than refused.
    first = db.session.scalar(
        select(OtpChallenge.id).where(OtpChallenge.order_id == order.id).limit(1)
    )
    try:
        challenge = issue_order_code(order, user, client, resend=first is not None)
    except SendRefused as refused:
        send = otp.service().refused(refused)
        return ResendResult(ResendOutcome.REFUSED, order, send)
    if step_up is not None:
        steps.extend(step_up, challenge.expires_at)
    db.session.commit()
    return ResendResult(ResendOutcome.SENT, order, CodeSend.of(challenge))


def _unsent(outcome: ResendOutcome, order: Order | None = None) -> ResendResult:
    db.session.rollback()  # the account's lock goes now, not when the request ends
    return ResendResult(outcome, order)
