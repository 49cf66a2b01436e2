"""Phone numbers as use cases: registering with one, confirming it, changing it.

A number is confirmed by a code sent to it before it can receive step-up codes; a new number
replaces the old one only once its own code is entered, and the old number is told.
"""

from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from shop import alerts, audit, clock, otp, risk, settings
from shop.accounts import (
    EmailTaken,
    InvalidPhone,
    authenticate,
    find_user_by_email,
    normalise_phone,
    register_user,
    tokens,
)
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, User
from shop.money import format_money
from shop.otp import Check, CodeSend, Refusal, SendRefused, binding_for, limits, texts


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


def _normalise(raw: str, client: Client, user: User | None = None) -> str:
    """`raw` in E.164, or raise InvalidPhone; a number refused here is a code not sent, and
    is recorded as such (a burst of them from many addresses is SMS pumping)."""
    try:
        return normalise_phone(raw, settings.allowed_countries())
    except InvalidPhone as error:
        reason = (
            Refusal.COUNTRY_NOT_ALLOWED if error.country_not_allowed else Refusal.INVALID_NUMBER
        )
        refused = SendRefused(
            reason,
            phone=raw.strip(),
            client_ip=client.ip,
            purpose=str(OtpPurpose.PHONE),
            user_id=user.id if user is not None else None,
        )
        limits.record(refused)
        db.session.commit()
        raise


# Registration ------------------------------------------------------------------------------


class RegisterOutcome(StrEnum):
    # The one answer for a new e-mail and a taken one alike: sign in next.
    ACCEPTED = "accepted"
    INVALID_PHONE = "invalid_phone"


REGISTERED = (
    "Next, sign in with this e-mail and password: we then send a code to confirm your number."
)


@dataclass(frozen=True)
class RegisterResult:
    outcome: RegisterOutcome
    message: str = ""


def register(email: str, phone: str, password: str, client: Client) -> RegisterResult:
    """Open an account with a number still to confirm, or, if the e-mail has one already,
    tell its holder by SMS that someone tried; the answer is the same either way, as slow,
    and under the sign-in rate limit, so registering is no better an oracle of who has an
    account than signing in (docs/security.md). Nobody is signed in: the sign-in that
    follows confirms the number with a code (`shop.accounts.signin`)."""
    try:
        e164 = _normalise(phone, client)
    except InvalidPhone as error:
        return RegisterResult(RegisterOutcome.INVALID_PHONE, message=str(error))
    hash_method = current_app.config["PASSWORD_HASH_METHOD"]
    holder = find_user_by_email(email)
    if holder is None:
        try:
            user = register_user(email, e164, password, hash_method=hash_method)
            db.session.flush()
            audit.record(audit.Event.REGISTERED, user_id=user.id, ip=client.ip)
            db.session.commit()
            return RegisterResult(RegisterOutcome.ACCEPTED, REGISTERED)
        except (EmailTaken, IntegrityError):  # registered a moment ago by someone else
            db.session.rollback()
            holder = find_user_by_email(email)
    else:
        generate_password_hash(password, method=hash_method)  # the same work as a new account
    if holder is not None:
        alerts.registration_tried(holder)
        audit.record(audit.Event.REGISTRATION_TRIED, user_id=holder.id, ip=client.ip)
        db.session.commit()
    return RegisterResult(RegisterOutcome.ACCEPTED, REGISTERED)


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
    if rules.phone_change_action != "otp":
        return ""
    if rules.phone_changed_factor == "passkey":
        how = "with your passkey first (without one, the shop checks them)"
    else:
        how = "with a code or a passkey first"
    said = f"For {hours} hours after a change, orders are confirmed {how}."
    if rules.exemption_enabled:
        # The low-value exemption still lifts the code from a small order (shop/risk/engine.py).
        under = format_money(rules.exemption_under_minor, current_app.config["SHOP_CURRENCY"])
        said += f" Orders under {under} may need none."
    return said


def start_phone_change(user: User, password: str, phone: str, client: Client) -> ChangeResult:
    """With the account's password, send a code to a new number; it replaces the old one
    once that code is entered (`confirm_phone`)."""
    valid = authenticate(
        user.email, password, hash_method=current_app.config["PASSWORD_HASH_METHOD"]
    )
    if valid is None:
        return ChangeResult(ChangeOutcome.WRONG_PASSWORD, message="That is not your password.")
    try:
        e164 = _normalise(phone, client, user)  # a refused number is recorded there
    except InvalidPhone as error:
        return ChangeResult(ChangeOutcome.INVALID_PHONE, message=str(error))
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
    return otp.live_challenge(user, OtpPurpose.PHONE)


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
    old_phone, old_confirmed = user.phone, user.phone_verified
    user.phone_verified_at = now
    if phone == old_phone:
        audit.record(audit.Event.PHONE_VERIFIED, user_id=user.id, ip=client.ip)
        db.session.commit()
        return ConfirmPhoneResult(
            ConfirmPhoneOutcome.CONFIRMED, message="Your phone number is confirmed."
        )
    user.phone = phone
    user.phone_changed_at = now
    if old_confirmed:  # an unconfirmed number may be anyone's
        alerts.phone_changed(user, old_phone)
    # The old number may be the lost phone: a code it holds, or one still queued for it,
    # must not confirm anything now.
    otp.end_live_sent_to(user, old_phone, reason="phone_changed")
    audit.record(audit.Event.PHONE_CHANGED, user_id=user.id, ip=client.ip)
    # A new authenticator: every session and API token ends; the caller starts this session
    # afresh.
    user.end_all_sessions()
    tokens.revoke_all(user)
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
