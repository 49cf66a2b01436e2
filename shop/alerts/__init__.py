"""Real-time SMS alerts on account activity, each with a signed single-use "not me" link.

Alerts hold no code, address or card data. New-device and order alerts are optional (per
account, and off after the number answers STOP); code-locked and phone-changed alerts are
security alerts and always go out.
"""

import secrets
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from shop import clock
from shop.extensions import db
from shop.models import NotMeLink, Order, SmsKind, SmsMessage, User
from shop.money import format_money
from shop.sms import queue_sms

NOT_ME_MAX_AGE = 24 * 3600


class _ClockSigner(TimestampSigner):
    """Timestamps from the shop's clock, so that tests can freeze expiry."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt="shop.not-me", signer=_ClockSigner
    )


def not_me_url(user: User) -> str:
    """A new single-use "not me" link for `user` (the row joins the caller's transaction)."""
    link = NotMeLink(id=secrets.token_urlsafe(16), user_id=user.id)
    db.session.add(link)
    token = _serializer().dumps(link.id)
    return f"{current_app.config['PUBLIC_BASE_URL']}/account/not-me/{token}"


def link_for_token(token: str) -> NotMeLink | None:
    """The unexpired link a token names, used or not; None if forged or older than 24 h."""
    try:
        link_id = _serializer().loads(token, max_age=NOT_ME_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    return db.session.get(NotMeLink, link_id) if isinstance(link_id, str) else None


def _send(user: User, kind: SmsKind, text: str, *, to_number: str | None = None) -> None:
    shop = current_app.config["SHOP_NAME"]
    body = f"{shop}: {text} Not you? {not_me_url(user)}"
    queue_sms(to_number or user.phone, body, kind, user_id=user.id)


def new_device(user: User, *, browser: str, ip: str, at: datetime) -> bool:
    """Alert a sign-in from a device the account has not used before. True if queued."""
    if not user.wants_alert(user.alert_new_device):
        return False
    when = at.strftime("%d %b %H:%M UTC")
    _send(user, SmsKind.ALERT_NEW_DEVICE, f"new sign-in on {browser}, IP {ip}, {when}.")
    return True


def order_placed(user: User, order: Order) -> bool:
    if not user.wants_alert(user.alert_order_placed):
        return False
    amount = format_money(order.total_minor, order.currency)
    state = "is held for the shop's review" if order.status == "held" else "was placed"
    _send(user, SmsKind.ALERT_ORDER_PLACED, f"order {order.ref} for {amount} {state}.")
    return True


def code_locked(user: User) -> None:
    """Security alert: always sent, STOP or not."""
    _send(
        user,
        SmsKind.ALERT_CODE_LOCKED,
        "too many wrong codes were entered on your account; SMS verification is locked for 24 h.",
    )


def phone_changed(user: User, old_phone: str) -> None:
    """Security alert to the old number: always sent."""
    _send(
        user,
        SmsKind.ALERT_PHONE_CHANGED,
        f"the phone number on your account was changed to one ending {user.phone[-3:]}.",
        to_number=old_phone,
    )


# At most one "someone tried to register" SMS per account per day: a bot retrying the form
# must not turn the alert into a way to flood the holder's phone.
REGISTRATION_ALERT_EVERY = timedelta(hours=24)


def registration_tried(user: User) -> bool:
    """Security alert: someone tried to register a new account with this account's e-mail.
    No "not me" link: nothing happened to the account. True if queued."""
    since = clock.now() - REGISTRATION_ALERT_EVERY
    recent = db.session.scalar(
        select(SmsMessage.id)
        .where(
            SmsMessage.user_id == user.id,
            SmsMessage.kind == SmsKind.ALERT_REGISTRATION_TRIED,
            SmsMessage.created_at > since,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    shop = current_app.config["SHOP_NAME"]
    text = (
        f"{shop}: someone tried to register a new account with your e-mail address. "
        "If it was you, sign in instead. If not, nothing has changed."
    )
    queue_sms(user.phone, text, SmsKind.ALERT_REGISTRATION_TRIED, user_id=user.id)
    return True
