""" "Not me" and "sign out everywhere" as use cases: ending sessions, cancelling orders, and
putting back the number a phone change replaced."""

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import update

from shop import alerts, audit, clock, locks, orders, otp
from shop.accounts import mask_phone, tokens
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
    # A "phone number changed" alert's link: the number put back (LOCKED_DOWN), or that
    # would be (READY), and the one it replaces. None when the link changes no number.
    phone_restored: str | None = None
    phone_replaced: str | None = None


def inspect_not_me(token: str) -> NotMeResult:
    """What the link can still do, changing nothing (the page shown before confirming), and
    the number a ready link would put back."""
    link = alerts.link_for_token(token)
    if link is None:
        return NotMeResult(NotMeOutcome.INVALID)
    if link.used_at is not None:
        return NotMeResult(NotMeOutcome.USED)
    user = db.session.get(User, link.user_id)
    if link.restores_phone is None or link.restores_phone == user.phone:
        return NotMeResult(NotMeOutcome.READY)
    return NotMeResult(NotMeOutcome.READY, [], link.restores_phone, user.phone)


def not_me(token: str, client: Client) -> NotMeResult:
    """Use the link once: end every session, cancel unshipped orders, ask a code next time;
    a phone change's link also puts the number before it back."""
    link = alerts.link_for_token(token)
    if link is None:
        return NotMeResult(NotMeOutcome.INVALID)
    link_id, user_id = link.id, link.user_id
    # Before its orders and their products, as a checkout; the account's number and the link
    # are read again under it.
    locks.hold_account(user_id, fresh=True)
    used = db.session.execute(
        update(NotMeLink)
        .where(NotMeLink.id == link_id, NotMeLink.used_at.is_(None))
        .values(used_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        db.session.rollback()
        return NotMeResult(NotMeOutcome.USED)
    link = db.session.get(NotMeLink, link_id)
    user = db.session.get(User, user_id)
    replaced = user.phone
    restored = _put_number_back(user, link.restores_phone, client)
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
    if restored is None:
        return NotMeResult(NotMeOutcome.LOCKED_DOWN, cancelled)
    return NotMeResult(NotMeOutcome.LOCKED_DOWN, cancelled, restored, replaced)


def _put_number_back(user: User, number: str | None, client: Client) -> str | None:
    """The number a phone change replaced is the account's again, confirmed (the link came
    to it): every later sign-in and reset code goes there, and every live code sent
    anywhere else ends. The number may have changed more than once since: the alerts of
    the later changes carry no such link (`shop.alerts.phone_changed`), so this one, sent
    to the number before them all, undoes them all. The number put back, if any."""
    if number is None or number == user.phone:
        return None
    replaced, now = user.phone, clock.now()
    user.phone = number
    user.phone_verified_at = now
    # A change of number all the same: orders that would need a code are held (or asked for
    # a stronger factor) for the owner's cool-off from now, as after any change.
    user.phone_changed_at = now
    otp.end_live_not_sent_to(user, number, reason="not_me")
    audit.record(
        audit.Event.PHONE_RESTORED,
        user_id=user.id,
        ip=client.ip,
        restored=mask_phone(number),
        replaced=mask_phone(replaced),
    )
    return number


def sign_out_everywhere(user: User, client: Client) -> None:
    """End every session, remembered device and API token of the account (the caller starts
    its own session again)."""
    user.end_all_sessions()
    tokens.revoke_all(user)
    audit.record(audit.Event.SIGNED_OUT_EVERYWHERE, user_id=user.id, ip=client.ip)
    db.session.commit()
