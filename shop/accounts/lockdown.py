""" "Not me" and "sign out everywhere" as use cases: ending sessions, cancelling orders."""

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import update

from shop import alerts, audit, clock, locks, orders
from shop.accounts import tokens
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import NotMeLink, Order, User
from shop.stepup.enrolment import remove_recent


class NotMeOutcome(StrEnum):
    LOCKED_DOWN = "locked_down"
    READY = "ready"  # a valid link, not used yet: the page asks to confirm
    USED = "used"  # each link works once
    INVALID = "invalid"  # forged, unknown or older than 24 h


@dataclass(frozen=True)
class NotMeResult:
    outcome: NotMeOutcome
    cancelled: list[Order] = field(default_factory=list)


def check_not_me(token: str) -> NotMeOutcome:
    """What the link can still do, changing nothing (the page shown before confirming)."""
    link = alerts.link_for_token(token)
    if link is None:
        return NotMeOutcome.INVALID
    return NotMeOutcome.USED if link.used_at is not None else NotMeOutcome.READY


def not_me(token: str, client: Client) -> NotMeResult:
    """Use the link once: end every session, cancel unshipped orders, ask a code next time."""
    link = alerts.link_for_token(token)
    if link is None:
        return NotMeResult(NotMeOutcome.INVALID)
    locks.hold_account(link.user_id)  # before its orders and their products, as a checkout
    used = db.session.execute(
        update(NotMeLink)
        .where(NotMeLink.id == link.id, NotMeLink.used_at.is_(None))
        .values(used_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        db.session.rollback()
        return NotMeResult(NotMeOutcome.USED)
    user = db.session.get(User, link.user_id)
    user.end_all_sessions()
    tokens.revoke_all(user)
    user.login_code_required = True
    cancelled = orders.cancel_open_orders(user)
    # Whoever did what the alert was about may have added their own passkey or app.
    removed = remove_recent(user, clock.now())
    audit.record(
        audit.Event.NOT_ME,
        user_id=user.id,
        ip=client.ip,
        cancelled=[order.ref for order in cancelled],
        **({"factors_removed": removed} if removed else {}),
    )
    db.session.commit()
    return NotMeResult(NotMeOutcome.LOCKED_DOWN, cancelled)


def sign_out_everywhere(user: User, client: Client) -> None:
    """End every session, remembered device and API token of the account (the caller starts
    its own session again)."""
    user.end_all_sessions()
    tokens.revoke_all(user)
    audit.record(audit.Event.SIGNED_OUT_EVERYWHERE, user_id=user.id, ip=client.ip)
    db.session.commit()
