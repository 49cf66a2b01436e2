"""Real-time SMS alerts on account activity, each with a signed single-use "not me" link.

Alerts hold no code, address or card data. New-device and order alerts are optional (per
account, and off after the number answers STOP); code-locked, phone-changed and
password-changed alerts are security alerts and always go out.
"""

import secrets
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from shop import clock
from shop.extensions import db
from shop.models import NotMeLink, Order, SmsKind, User
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


def password_changed(user: User, *, reset: bool) -> None:
    """Security alert: always sent. "Not me" then locks the account down."""
    how = "reset with a code sent to this number" if reset else "changed"
    _send(
        user,
        SmsKind.ALERT_PASSWORD_CHANGED,
        f"the password of your account was {how}, and every session was signed out.",
    )


def phone_changed(user: User, old_phone: str) -> None:
    """Security alert to the old number: always sent."""
    _send(
        user,
        SmsKind.ALERT_PHONE_CHANGED,
        f"the phone number on your account was changed to one ending {user.phone[-3:]}.",
        to_number=old_phone,
    )
