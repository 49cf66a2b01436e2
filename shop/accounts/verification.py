"""Phone numbers as use cases: registering with one, confirming it, changing it.

A number is confirmed by a code sent to it before it can receive step-up codes; a new number
replaces the old one only once its own code is entered, and the old number is told.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from sqlalchemy.exc import IntegrityError

from shop import alerts, audit, clock, otp, risk
from shop.accounts import EmailTaken, InvalidPhone, authenticate, normalise_phone, register_user
from shop.accounts.client import Client
from shop.accounts.signin import finish_sign_in
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, User
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts


def phone_binding(user: User, phone: str) -> str:
    return binding_for("phone", user.id, phone)


def send_phone_code(user: User, phone: str, client: Client, *, resend: bool) -> CodeSend:
    """Send a code to `phone` (the account's number, or a new one being confirmed)."""
    return otp.service().send(
        user,
        OtpPurpose.PHONE,
        phone_binding(user, phone),
        client_ip=client.ip,
        text=texts.phone_code(),
        phone=phone,
        resend=resend,
    )


def _normalise(raw: str) -> str:
    return normalise_phone(raw, current_app.config["SMS_ALLOWED_COUNTRIES"])


# Registration ------------------------------------------------------------------------------


class RegisterOutcome(StrEnum):
    REGISTERED = "registered"  # signed in; see `send` for the code to the number
    INVALID_PHONE = "invalid_phone"
    EMAIL_TAKEN = "email_taken"


@dataclass(frozen=True)
class RegisterResult:
    outcome: RegisterOutcome
    user: User | None = None
    send: CodeSend | None = None
    message: str = ""


def register(
    email: str,
    phone: str,
    password: str,
    client: Client,
    *,
    anonymous_cart: Mapping[int, int] | None = None,
) -> RegisterResult:
    """Open an account, sign it in on this client and send a code to confirm its number."""
    try:
        e164 = _normalise(phone)
    except InvalidPhone as error:
        return RegisterResult(RegisterOutcome.INVALID_PHONE, message=str(error))
    try:
        user = register_user(
            email, e164, password, hash_method=current_app.config["PASSWORD_HASH_METHOD"]
        )
        db.session.commit()
    except (EmailTaken, IntegrityError):
        db.session.rollback()
        return RegisterResult(
            RegisterOutcome.EMAIL_TAKEN,
            message="An account with this e-mail already exists. Sign in instead.",
        )
    send = send_phone_code(user, e164, client, resend=False)
    finish_sign_in(user, client, anonymous_cart or {})
    return RegisterResult(RegisterOutcome.REGISTERED, user, send)


# Changing the number -----------------------------------------------------------------------


class ChangeOutcome(StrEnum):
    CODE_SENT = "code_sent"  # see `send`: sent, queued or refused
    WRONG_PASSWORD = "wrong_password"
    INVALID_PHONE = "invalid_phone"
    SAME_NUMBER = "same_number"


@dataclass(frozen=True)
class ChangeResult:
    outcome: ChangeOutcome
    send: CodeSend | None = None
    message: str = ""


def phone_change_cool_off() -> str:
    """What a change of number means for the next orders, per the owner's current rules."""
    rules = risk.current_rules()
    hours = rules.phone_change_hours
    if rules.phone_change_action == "hold":
        return (
            f"For {hours} hours after a change, orders that would need a code are held for "
            "the shop's review instead."
        )
    if rules.phone_change_action == "otp":
        return f"For {hours} hours after a change, every order is confirmed by a code."
    return ""


def start_phone_change(user: User, password: str, phone: str, client: Client) -> ChangeResult:
    """With the account's password, send a code to a new number; it replaces the old one
    once that code is entered (`confirm_phone`)."""
    valid = authenticate(
        user.email, password, hash_method=current_app.config["PASSWORD_HASH_METHOD"]
    )
    try:
        e164 = _normalise(phone)
    except InvalidPhone as error:
        return ChangeResult(ChangeOutcome.INVALID_PHONE, message=str(error))
    if valid is None:
        return ChangeResult(ChangeOutcome.WRONG_PASSWORD, message="That is not your password.")
    if e164 == user.phone:
        return ChangeResult(ChangeOutcome.SAME_NUMBER, message="That is already your number.")
    send = send_phone_code(user, e164, client, resend=False)
    return ChangeResult(ChangeOutcome.CODE_SENT, send, send.message if send.refused else "")


# Confirming a number -----------------------------------------------------------------------


class ConfirmPhoneOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the account's number is now confirmed
    CHANGED = "changed"  # a new number replaced the old one; every other session ended
    WRONG_CODE = "wrong_code"
    CODE_DEAD = "code_dead"
    LOCKED = "locked"
    NO_CODE = "no_code"


@dataclass(frozen=True)
class ConfirmPhoneResult:
    outcome: ConfirmPhoneOutcome
    tries_left: int = 0
    message: str = ""


def phone_challenge(user: User) -> OtpChallenge | None:
    """The live code confirming a number (the account's own, or a new one), if any."""
    return otp.service().live_challenge(user, OtpPurpose.PHONE)


def confirm_phone(user: User, code: str, client: Client) -> ConfirmPhoneResult:
    challenge = phone_challenge(user)
    if challenge is None:
        return ConfirmPhoneResult(
            ConfirmPhoneOutcome.NO_CODE, message="There is no code waiting. Ask for a new one."
        )
    phone = challenge.phone
    result = otp.service().verify(
        user, OtpPurpose.PHONE, phone_binding(user, phone), code, client_ip=client.ip
    )
    if not result.ok:
        db.session.commit()
        if result.outcome == Check.WRONG:
            return ConfirmPhoneResult(
                ConfirmPhoneOutcome.WRONG_CODE, result.tries_left, result.message
            )
        outcome = (
            ConfirmPhoneOutcome.LOCKED
            if result.outcome == Check.LOCKED
            else ConfirmPhoneOutcome.CODE_DEAD
        )
        return ConfirmPhoneResult(outcome, message=result.message)
    now = clock.now()
    old_phone = user.phone
    user.phone_verified_at = now
    if phone == old_phone:
        audit.record(audit.Event.PHONE_VERIFIED, user_id=user.id, ip=client.ip)
        db.session.commit()
        return ConfirmPhoneResult(
            ConfirmPhoneOutcome.CONFIRMED, message="Your phone number is confirmed."
        )
    user.phone = phone
    user.phone_changed_at = now
    alerts.phone_changed(user, old_phone)
    audit.record(audit.Event.PHONE_CHANGED, user_id=user.id, ip=client.ip)
    # A new authenticator: every session ends; the caller starts this one afresh.
    user.end_all_sessions()
    db.session.commit()
    return ConfirmPhoneResult(
        ConfirmPhoneOutcome.CHANGED,
        message="Your new number is confirmed. Other sessions were signed out.",
    )


def _number_being_confirmed(user: User) -> str:
    live = phone_challenge(user)
    return live.phone if live is not None else user.phone


def phone_resend_blocker(user: User, client: Client) -> SendRefused | None:
    """Why "send a new code" would be refused now (the cool-down aside), if it would."""
    phone = _number_being_confirmed(user)
    return otp.service().resend_blocker(
        user, OtpPurpose.PHONE, phone_binding(user, phone), client_ip=client.ip, phone=phone
    )


def resend_phone_code(user: User, client: Client) -> CodeSend:
    """A new code to the number being confirmed (a new one, or the account's)."""
    return send_phone_code(user, _number_being_confirmed(user), client, resend=True)
