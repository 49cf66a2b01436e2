"""The owner's review of held orders, as use cases: approve, ask the shopper for a code,
cancel; and the delivery process's sweep of orders held too long.

Each decision is one conditional UPDATE from `held` (`lifecycle.move`): of two owners acting
on one order at once, one wins and the other is told it was already handled. Each is
audited (who, when, the note), goes on the order's timeline, and tells the shopper by SMS
through the outbox, all in one transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import joinedload

from shop import alerts, audit, clock, locks, otp, settings
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Order, OrderEventKind, OrderStatus, User
from shop.orders import lifecycle, timeline
from shop.orders.checkout import issue_order_code
from shop.otp import SendRefused

# Held orders a sweep cancels at most, so that one round of the delivery process stays short.
SWEEP_BATCH = 100


class ReviewOutcome(StrEnum):
    APPROVED = "approved"  # placed
    CODE_REQUESTED = "code_requested"  # waiting for the shopper's code, which is on its way
    CANCELLED = "cancelled"  # stock returned
    ALREADY_HANDLED = "already_handled"  # not held (any more): nothing changed
    NOTE_REQUIRED = "note_required"
    CODE_NOT_SENT = "code_not_sent"  # no code may be sent now: the order is still held
    NOT_FOUND = "not_found"


MESSAGES = {
    ReviewOutcome.ALREADY_HANDLED: "This order is no longer held: it was already handled.",
    ReviewOutcome.NOTE_REQUIRED: "Write a note saying why: it is kept with the decision.",
    ReviewOutcome.NOT_FOUND: "There is no such order.",
}


@dataclass(frozen=True)
class ReviewResult:
    outcome: ReviewOutcome
    order: Order | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.outcome in (
            ReviewOutcome.APPROVED,
            ReviewOutcome.CODE_REQUESTED,
            ReviewOutcome.CANCELLED,
        )


def _find(order_ref: str) -> Order | None:
    return db.session.scalar(select(Order).where(Order.ref == order_ref))


def _refuse(outcome: ReviewOutcome, order: Order | None = None) -> ReviewResult:
    db.session.rollback()
    return ReviewResult(outcome, order, MESSAGES[outcome])


def _reviewed_by(owner: User) -> dict:
    return {"reviewed_at": clock.now(), "reviewed_by_id": owner.id}


def approve(
    order_ref: str, owner: User, note: str, client: Client, *, ask_code: bool = False
) -> ReviewResult:
    """Place a held order; or, with `ask_code`, send the shopper an order code first, to be
    entered on the usual code page (the order then waits for it, and lapses with it)."""
    note = audit.clean_note(note)
    order = _find(order_ref)
    if order is None:
        return _refuse(ReviewOutcome.NOT_FOUND)
    if not note:
        return _refuse(ReviewOutcome.NOTE_REQUIRED, order)
    if ask_code:
        return _ask_for_code(order, owner, note, client)
    if not lifecycle.move(
        order, OrderStatus.PLACED, allowed_from=[OrderStatus.HELD], **_reviewed_by(owner)
    ):
        return _refuse(ReviewOutcome.ALREADY_HANDLED, order)
    timeline.record(order, OrderEventKind.APPROVED, actor_id=owner.id, note=note)
    alerts.order_approved(order.user, order)
    _audit(audit.Event.ORDER_APPROVED, order, owner, note, client)
    db.session.commit()
    return ReviewResult(ReviewOutcome.APPROVED, order, f"Order {order.ref} is approved and placed.")


def _ask_for_code(order: Order, owner: User, note: str, client: Client) -> ReviewResult:
    # The shopper's account first, as every use case that sends its code takes it: before
    # the order's row, which a "not me" of the account takes after the account.
    locks.hold_account(order.user_id, fresh=True)
    if not lifecycle.move(
        order,
        OrderStatus.PENDING_VERIFICATION,
        allowed_from=[OrderStatus.HELD],
        **_reviewed_by(owner),
    ):
        return _refuse(ReviewOutcome.ALREADY_HANDLED, order)
    timeline.record(order, OrderEventKind.CODE_REQUESTED, actor_id=owner.id, note=note)
    alerts.order_code_requested(order.user, order)
    try:
        issue_order_code(order, order.user, client, resend=False, by_owner=True)
    except SendRefused as refused:
        # Nothing of the review is kept: the order is held again, the refusal recorded.
        otp.service().refused(refused)
        db.session.refresh(order)
        message = f"No code could be sent, so order {order.ref} is still held: {refused.message}"
        return ReviewResult(ReviewOutcome.CODE_NOT_SENT, order, message)
    _audit(audit.Event.ORDER_CODE_REQUESTED, order, owner, note, client)
    db.session.commit()
    return ReviewResult(
        ReviewOutcome.CODE_REQUESTED,
        order,
        f"Order {order.ref} waits for the shopper's code, sent by SMS.",
    )


def cancel(order_ref: str, owner: User, note: str, client: Client) -> ReviewResult:
    """Cancel a held order: its stock goes back and the shopper is told by SMS."""
    note = audit.clean_note(note)
    order = _find(order_ref)
    if order is None:
        return _refuse(ReviewOutcome.NOT_FOUND)
    if not note:
        return _refuse(ReviewOutcome.NOTE_REQUIRED, order)
    if not lifecycle.release(
        order,
        OrderStatus.CANCELLED,
        allowed_from=[OrderStatus.HELD],
        reason="owner",
        actor_id=owner.id,
        note=note,
        **_reviewed_by(owner),
    ):
        return _refuse(ReviewOutcome.ALREADY_HANDLED, order)
    alerts.order_cancelled(order.user, order)
    _audit(audit.Event.ORDER_CANCELLED, order, owner, note, client)
    db.session.commit()
    return ReviewResult(ReviewOutcome.CANCELLED, order, f"Order {order.ref} is cancelled.")


def _audit(event: audit.Event, order: Order, owner: User, note: str, client: Client) -> None:
    audit.record(
        event, user_id=order.user_id, actor_id=owner.id, ip=client.ip, order=order.ref, note=note
    )


# The sweep -------------------------------------------------------------------------------------


def cancel_held_too_long(now: datetime | None = None) -> int:
    """Cancel the orders held for longer than the owner's setting, with the same SMS as an
    owner's cancellation, each order in a transaction of its own (its products locked in id
    order, as a checkout locks them). A chore of the delivery process; returns how many."""
    now = now or clock.now()
    days = settings.current().held_order_days
    stale = db.session.scalars(
        select(Order)
        .where(Order.status == OrderStatus.HELD, Order.created_at <= now - timedelta(days=days))
        .order_by(Order.created_at, Order.id)
        .limit(SWEEP_BATCH)
    ).all()
    cancelled = 0
    for order in stale:
        if lifecycle.release(
            order,
            OrderStatus.CANCELLED,
            allowed_from=[OrderStatus.HELD],
            reason="held_too_long",
            facts={"days": days},
        ):
            alerts.order_cancelled(order.user, order)
            audit.record(
                audit.Event.ORDER_CANCELLED,
                user_id=order.user_id,
                by_the_shop=True,
                order=order.ref,
                note=f"Held for longer than {days} days: cancelled by the shop automatically.",
            )
            cancelled += 1
        db.session.commit()
    return cancelled


# The queue -------------------------------------------------------------------------------------


# The queue's count stops here ("1,000+"): every owner page shows it, and a queue that long
# reads the same whether it holds a thousand orders or twenty thousand.
HELD_COUNT_CAP = 1_000


@dataclass(frozen=True)
class HeldCount:
    """How many orders wait for review, counted up to one past `cap`."""

    count: int
    cap: int = HELD_COUNT_CAP

    def __str__(self) -> str:
        return f"{self.cap:,}+" if self.count > self.cap else f"{self.count:,}"


def held_count(cap: int = HELD_COUNT_CAP) -> HeldCount:
    """How many orders wait for review: an index range over the held orders only, which
    stops one past `cap`."""
    held = select(Order.id).where(Order.status == OrderStatus.HELD).limit(cap + 1).subquery()
    return HeldCount(db.session.scalar(select(func.count()).select_from(held)), cap)


def held_orders(after_ref: str | None, limit: int) -> tuple[list[Order], bool]:
    """Held orders, oldest first, after the one named `after_ref`; and whether more follow.
    Keyset on (created_at, id), so a page costs the same however deep the queue."""
    query = (
        select(Order)
        # The queue shows each shopper, not the items: one query, the account joined.
        .options(joinedload(Order.user, innerjoin=True))
        .where(Order.status == OrderStatus.HELD)
    )
    if after_ref is not None:
        after = _find(after_ref)
        if after is None:
            return [], False
        query = query.where(
            or_(
                Order.created_at > after.created_at,
                and_(Order.created_at == after.created_at, Order.id > after.id),
            )
        )
    rows = list(db.session.scalars(query.order_by(Order.created_at, Order.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
