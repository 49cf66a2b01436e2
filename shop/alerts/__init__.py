"""Real-time SMS alerts on account activity, each with a signed single-use "not me" link, and
the messages of the owner's review: to the shopper, and to the owners themselves.

Alerts hold no code, address or card data; their words are in `shop.alerts.texts`. New-device
and order alerts are optional (per account, and off after the number answers STOP);
code-locked, phone-changed, password-changed, unlocked, factor-added, factor-removed and
recovery-code-used alerts are security alerts and always go out, and so does the outcome of a
review (a service message about the shopper's own order).
Every one is a row in the outbox (`queue_sms`), sent by the delivery process after the caller
commits.

A "not me" link signs the account out everywhere and cancels its open orders (the one of a
"phone number changed" alert also puts the old number back), so it is kept as a code is: the
body is sealed at rest (shop.sms.sealing), and the owner's SMS log shows a copy with the
link's token masked, which also replaces the body once the message is handed to the provider.
"""

import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from shop import clock, locks
from shop.alerts import texts
from shop.extensions import db
from shop.models import NotMeLink, Order, Role, SmsKind, SmsMessage, User
from shop.sms import queue_sms, sealing

NOT_ME_MAX_AGE = 24 * 3600
# The token of a "not me" link, wherever the link is written: an SMS, a log line, a Referer
# (it ends at a space, a quote or the next part of a URL).
NOT_ME_TOKEN = re.compile(r"(?<=/account/not-me/)[^/?#\s\"']+")


class _ClockSigner(TimestampSigner):
    """Timestamps from the shop's clock, so that tests can freeze expiry."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt="shop.not-me", signer=_ClockSigner
    )


def _url(path: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}{path}"


def not_me_url(user: User, *, restores_phone: str | None = None) -> str:
    """A new single-use "not me" link for `user` (the row joins the caller's transaction);
    with `restores_phone`, following it also puts that number back (a phone change's)."""
    link = NotMeLink(id=secrets.token_urlsafe(16), user_id=user.id, restores_phone=restores_phone)
    db.session.add(link)
    token = _serializer().dumps(link.id)
    return _url(f"/account/not-me/{token}")


def mask_not_me_links(text: str) -> str:
    """`text` with the token of every "not me" link in it masked: what may be shown to
    anyone but the account holder."""
    return NOT_ME_TOKEN.sub(sealing.MASK, text)


def link_for_token(token: str) -> NotMeLink | None:
    """The unexpired link a token names, used or not; None if forged or older than 24 h."""
    try:
        link_id = _serializer().loads(token, max_age=NOT_ME_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    return db.session.get(NotMeLink, link_id) if isinstance(link_id, str) else None


def _send(
    user: User,
    kind: SmsKind,
    text: str,
    *,
    to_number: str | None = None,
    order: Order | None = None,
    not_me: bool = True,
    restores_phone: str | None = None,
) -> bool:
    """Queue `text` for the account's number (or `to_number`); True if queued. A number the
    account has not confirmed may be anyone's (a registration can name any number): it is
    sent nothing."""
    if to_number is None and not user.phone_verified:
        return False
    target = to_number or user.phone
    body, masked = f"{current_app.config['SHOP_NAME']}: {text}", None
    if not_me:
        body += f" Not you? {not_me_url(user, restores_phone=restores_phone)}"
        masked = mask_not_me_links(body)
        body = sealing.seal().seal(body, to_number=target)
    queue_sms(
        target,
        body,
        kind,
        user_id=user.id,
        redacted_body=masked,
        order_id=order.id if order is not None else None,
    )
    return True


def _sent_since(user: User, kind: SmsKind, since: datetime, limit: int) -> int:
    """How many `kind` messages the account was sent after `since`, counted up to `limit`;
    under the account's lock, so that requests at once count one after another."""
    locks.hold_account(user.id)
    sent = (
        select(SmsMessage.id)
        .where(
            SmsMessage.user_id == user.id,
            SmsMessage.kind == kind,
            SmsMessage.created_at > since,
        )
        .limit(limit)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(sent))


# A sign-in from a new device (or a new API token) costs nothing to repeat: past this many
# alerts in an hour the holder, told already (each with "not me"), is not texted again that
# hour. Every sign-in stays in the account's recent activity.
NEW_DEVICE_ALERTS_PER_HOUR = 5


def new_device(user: User, *, browser: str, ip: str, at: datetime) -> bool:
    """Alert a sign-in from a device the account has not used before. True if queued."""
    if not user.wants_alert(user.alert_new_device):
        return False
    hour_ago = clock.now() - timedelta(hours=1)
    if _sent_since(user, SmsKind.ALERT_NEW_DEVICE, hour_ago, NEW_DEVICE_ALERTS_PER_HOUR) >= (
        NEW_DEVICE_ALERTS_PER_HOUR
    ):
        return False
    return _send(user, SmsKind.ALERT_NEW_DEVICE, texts.new_device(browser, ip, at))


def order_placed(user: User, order: Order) -> bool:
    if not user.wants_alert(user.alert_order_placed):
        return False
    return _send(user, SmsKind.ALERT_ORDER_PLACED, texts.order_placed(order), order=order)


def code_locked(user: User) -> None:
    """Security alert: always sent, STOP or not."""
    _send(user, SmsKind.ALERT_CODE_LOCKED, texts.code_locked())


def password_changed(user: User, *, reset: bool) -> None:
    """Security alert: always sent. "Not me" then locks the account down."""
    _send(user, SmsKind.ALERT_PASSWORD_CHANGED, texts.password_changed(reset=reset))


def phone_changed(user: User, old_phone: str) -> None:
    """Security alert to the old number: always sent. Its "not me" also puts the old number
    back, unless an earlier change's link that can still do so is out: then `old_phone` is
    itself the number in question (a thief's second change, or the holder changing back),
    and only that first link, sent to the number before, restores anything."""
    open_change = db.session.scalar(
        select(NotMeLink.id)
        .where(
            NotMeLink.user_id == user.id,
            NotMeLink.restores_phone.is_not(None),
            NotMeLink.used_at.is_(None),
            NotMeLink.created_at > clock.now() - timedelta(seconds=NOT_ME_MAX_AGE),
        )
        .limit(1)
    )
    _send(
        user,
        SmsKind.ALERT_PHONE_CHANGED,
        texts.phone_changed(user.phone[-3:]),
        to_number=old_phone,
        restores_phone=None if open_change is not None else old_phone,
    )


def factor_added(user: User, what: str) -> None:
    """Security alert: a passkey, an authenticator app or recovery codes were added."""
    _send(user, SmsKind.ALERT_FACTOR_ADDED, texts.factor_added(what))


def factor_removed(user: User, what: str) -> None:
    """Security alert: a way of proving it is you was removed."""
    _send(user, SmsKind.ALERT_FACTOR_REMOVED, texts.factor_removed(what))


def recovery_code_used(user: User, left: int) -> None:
    """Security alert: a recovery code was used (they are for emergencies)."""
    _send(user, SmsKind.ALERT_RECOVERY_CODE_USED, texts.recovery_code_used(left))


def step_up_unlocked(user: User) -> None:
    """Security alert: an owner lifted the wrong-code lock on the account."""
    _send(user, SmsKind.ALERT_STEP_UP_UNLOCKED, texts.step_up_unlocked())


# The owner's review, told to the shopper -----------------------------------------------------


def order_approved(user: User, order: Order) -> None:
    _send(user, SmsKind.ORDER_APPROVED, texts.order_approved(order), order=order)


def order_code_requested(user: User, order: Order) -> None:
    """Before the code itself: where to enter it (the code message carries no link)."""
    page = _url(f"/checkout/verify/{order.ref}")
    _send(
        user,
        SmsKind.ORDER_CODE_REQUESTED,
        texts.order_code_requested(order, page),
        order=order,
        not_me=False,
    )


def order_cancelled(user: User, order: Order) -> None:
    _send(user, SmsKind.ORDER_CANCELLED, texts.order_cancelled(order), order=order, not_me=False)


# To the owners ---------------------------------------------------------------------------------


def owners_to_alert(*, only_opted_in_to_held: bool = False) -> list[User]:
    """Owners with a confirmed number (that did not answer STOP, for an optional alert)."""
    query = select(User).where(User.role == Role.OWNER, User.phone_verified_at.is_not(None))
    if only_opted_in_to_held:
        query = query.where(User.alert_order_held.is_(True), User.sms_stopped.is_(False))
    return list(db.session.scalars(query.order_by(User.id)))


def order_held_for_owners(order: Order) -> int:
    """An SMS to each owner who asked for one when an order is held; how many were queued."""
    owners = owners_to_alert(only_opted_in_to_held=True)
    text = texts.owner_order_held(order, _url(f"/admin/orders/{order.ref}"))
    for owner in owners:
        _send(owner, SmsKind.OWNER_ORDER_HELD, text, not_me=False)
    return len(owners)


def sms_abuse_to_owners(text: str) -> int:
    """The SMS-abuse alarm to every owner: not optional, like a security alert."""
    owners = owners_to_alert()
    for owner in owners:
        _send(owner, SmsKind.OWNER_SMS_ABUSE, text, not_me=False)
    return len(owners)


# At most one "someone tried to register" SMS per account per day: a bot retrying the form
# must not turn the alert into a way to flood the holder's phone.
REGISTRATION_ALERT_EVERY = timedelta(hours=24)


def registration_tried(user: User) -> bool:
    """Security alert: someone tried to register a new account with this account's e-mail.
    No "not me" link: nothing happened to the account. True if queued."""
    since = clock.now() - REGISTRATION_ALERT_EVERY
    if _sent_since(user, SmsKind.ALERT_REGISTRATION_TRIED, since, 1):
        return False
    return _send(user, SmsKind.ALERT_REGISTRATION_TRIED, texts.registration_tried(), not_me=False)
