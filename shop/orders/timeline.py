"""An order's timeline: what happened to it, in order, in words for the owner or the shopper.

Each event is an `OrderEvent` row added to the transaction of what it records (by the order
use cases here, and by `queue_sms`, the delivery process and delivery receipts for the
messages about the order), so a timeline never tells of something that was rolled back.
The shopper reads the same lines without the owner's notes and names.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from shop.extensions import db
from shop.models import Order, OrderEvent, OrderEventKind, User
from shop.money import format_money
from shop.risk import RiskDecision
from shop.words import plural

Kind = OrderEventKind


def record(
    order: Order, kind: Kind, *, actor_id: int | None = None, note: str | None = None, **detail
) -> OrderEvent:
    """Add an event to the current transaction; `detail` holds plain facts, never a code."""
    event = OrderEvent.new(order.id, kind, actor_id=actor_id, note=note, **detail)
    db.session.add(event)
    return event


def record_submitted(order: Order) -> None:
    items = sum(item.quantity for item in order.items)
    record(
        order, Kind.SUBMITTED, total_minor=order.total_minor, currency=order.currency, items=items
    )


def record_decision(order: Order, decision: RiskDecision, *, stage: str) -> None:
    """The risk decision at `stage` ("checkout" or "confirmation"), with every reason and
    what may answer its step-up ("any" factor, or a "passkey" only)."""
    reasons = [
        {
            "code": reason.code,
            "outcome": str(reason.outcome),
            "text": reason.text,
            "factor": reason.factor,
        }
        for reason in decision.reasons
    ]
    record(order, Kind.DECISION, outcome=str(decision.outcome), stage=stage, reasons=reasons)


# Reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str
    note: str | None = None  # the owner's note: in the owner's view only


def for_owner(order: Order) -> list[TimelineEntry]:
    return timelines_for_owner([order.id])[order.id]


def for_shopper(order: Order) -> list[TimelineEntry]:
    """The shopper's view: the same events, without the owner's notes or names."""
    return [_entry(event, {}, owner=False) for event in _events([order.id])[order.id]]


def timelines_for_owner(order_ids: Iterable[int]) -> dict[int, list[TimelineEntry]]:
    """The owner's view of several orders' timelines, in two queries."""
    events = _events(order_ids)
    actors = {event.actor_id for lines in events.values() for event in lines if event.actor_id}
    emails = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(actors))).all())
        if actors
        else {}
    )
    return {
        order_id: [_entry(event, emails, owner=True) for event in lines]
        for order_id, lines in events.items()
    }


def _events(order_ids: Iterable[int]) -> dict[int, list[OrderEvent]]:
    wanted = list(order_ids)
    timelines: dict[int, list[OrderEvent]] = defaultdict(list)
    if wanted:
        rows = db.session.scalars(
            select(OrderEvent)
            .where(OrderEvent.order_id.in_(wanted))
            .order_by(OrderEvent.order_id, OrderEvent.id)
        )
        for event in rows:
            timelines[event.order_id].append(event)
    for lines in timelines.values():
        # Rows are numbered in commit order, and a receipt may commit after a later event.
        lines.sort(key=lambda event: (event.at, event.id))
    return {order_id: timelines[order_id] for order_id in wanted}


def _entry(event: OrderEvent, emails: dict[int, str], *, owner: bool) -> TimelineEntry:
    facts = event.facts
    who = "the shop"
    if owner and event.actor_id is not None:
        who = emails.get(event.actor_id, "(deleted account)")
    text = _words(Kind(event.kind), facts, who, owner=owner)
    return TimelineEntry(event.at, event.kind, text, event.note if owner else None)


OUTCOME_WORDS = {
    "allow": "placed without a code",
    "hold": "held for the shop's review",
    "block": "not accepted online",
}
# What the rules asked of an "otp" decision: any factor the account has, or a passkey only.
# A decision recorded before the events named it (no "factor" on its reasons) says neither.
STEP_UP_WORDS = {
    "any": "to be confirmed by SMS code or any other way the account has set up",
    "passkey": "to be confirmed with a passkey only",
    None: "to be confirmed",
}
SMS_WORDS = {
    "otp_order": "The code",
    "alert_order_placed": "The order alert",
    "order_approved": "The approval message",
    "order_code_requested": "The message asking for a code",
    "order_cancelled": "The cancellation message",
}
CONFIRMED_WORDS = {
    "sms": "Confirmed with the code sent by SMS",
    "totp": "Confirmed with a code from the authenticator app",
    "passkey": "Confirmed with a passkey",
    "recovery": "Confirmed with a recovery code",
}
CANCEL_WORDS = {
    "cart_changed": "Cancelled: the cart or the address changed after the code was sent.",
    "too_many_tries": "Cancelled: too many wrong codes.",
    "not_me": "Cancelled: the account holder answered “not me”.",
}


def _asked(facts: dict) -> str:
    """What the risk check decided, in words; for a step-up, which factors it allowed."""
    outcome = facts.get("outcome")
    if outcome != "otp":
        return OUTCOME_WORDS.get(outcome, "decided")
    asking = [reason for reason in facts.get("reasons", []) if reason.get("outcome") == "otp"]
    if not asking or any("factor" not in reason for reason in asking):
        return STEP_UP_WORDS[None]
    passkey_only = any(reason["factor"] == "passkey" for reason in asking)
    return STEP_UP_WORDS["passkey" if passkey_only else "any"]


def _words(kind: Kind, facts: dict, who: str, *, owner: bool) -> str:
    sms = SMS_WORDS.get(facts.get("sms", ""), "An SMS")
    if kind == Kind.SUBMITTED:
        amount = format_money(facts.get("total_minor", 0), facts.get("currency", "EUR"))
        return f"Checked out: {amount} for {plural(facts.get('items', 0), 'item')}."
    if kind == Kind.DECISION:
        stage = facts.get("stage", "checkout")
        head = f"Risk check at {stage}: {_asked(facts)}."
        reasons = facts.get("reasons", [])
        if owner:
            listed = " ".join(f"{reason['text']} [{reason['code']}]" for reason in reasons)
        else:
            listed = " ".join(reason["text"] for reason in reasons)
        return f"{head} {listed}".strip()
    if kind == Kind.HELD:
        if facts.get("reason") == "step_up_locked":
            return "Held for the shop's review: too many wrong codes on the account today."
        return "Held for the shop's review."
    if kind == Kind.BLOCKED:
        return "Not accepted online."
    if kind == Kind.SMS_QUEUED:
        if facts.get("send_at"):
            at = datetime.fromisoformat(facts["send_at"]).strftime("%H:%M:%S")
            return f"{sms} is queued: it goes out at {at} UTC, after the pause between two codes."
        return f"{sms} was queued for sending by SMS."
    if kind == Kind.SMS_SENT:
        return f"{sms} was handed to the SMS provider."
    if kind == Kind.SMS_DELIVERED:
        return f"{sms} was delivered to the phone."
    if kind == Kind.SMS_FAILED:
        why = facts.get("receipt") or "failed"
        if owner and facts.get("error_code"):
            why += f", error {facts['error_code']}"
        if owner and facts.get("error"):
            why += f": {facts['error']}"
        return f"{sms} was not delivered ({why})."
    if kind == Kind.SMS_DROPPED:
        if facts.get("reason") == "code_ended":  # replaced, used or ended after a failed try
            return f"{sms} was not tried again: the code was no longer valid."
        if facts.get("reason") == "code_dead":  # used or ended while it waited to go out
            return f"{sms} was not sent: the code was no longer valid."
        return f"{sms} was not sent: the code expired first."
    if kind == Kind.WRONG_CODE:
        left = facts.get("tries_left", 0)
        tries = plural(left, "try", "tries") if left else "no tries"
        if facts.get("factor") == "passkey":
            return f"A passkey did not confirm it: {tries} left."
        return f"A wrong code was entered: {tries} left."
    if kind == Kind.CONFIRMED:
        # Events from before step-up factors do not name one: then no factor is claimed.
        how = CONFIRMED_WORDS.get(facts.get("factor", ""), "Confirmed")
        return f"{how}: the order is placed."
    if kind == Kind.CODE_REQUESTED:
        if owner:
            return f"Approved by {who} on condition of a code: the shopper was sent one."
        return "The shop reviewed the order and asked for a code to confirm it."
    if kind == Kind.APPROVED:
        return f"Approved by {who}: the order is placed."
    if kind == Kind.CANCELLED:
        reason = facts.get("reason")
        if reason == "held_too_long":
            days = facts.get("days")
            return f"Cancelled: not reviewed within {plural(days, 'day')}."
        if reason in CANCEL_WORDS:
            return CANCEL_WORDS[reason]
        return f"Cancelled by {who}."
    if kind == Kind.EXPIRED:
        return "Expired: the code was not entered in time."
    if kind == Kind.RELEASED:
        return f"{plural(facts.get('items', 0), 'item')} went back into stock."
    return kind.replace("_", " ").capitalize() + "."
