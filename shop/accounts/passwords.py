"""Passwords as use cases: changing one when signed in (the current password, then a code by
SMS), and resetting a forgotten one with a code sent to the account's confirmed number.

Either way the new password ends every session and API token of the account, and a security
alert with a "not me" link goes to the number. A reset says nothing about whether an e-mail
has an account: the same pages, words and statuses whatever it is.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from werkzeug.security import generate_password_hash

from shop import alerts, audit, otp
from shop.accounts import authenticate, find_user_by_email, normalise_email, tokens
from shop.accounts.client import Client
from shop.accounts.signin import finish_sign_in
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, User
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts

MIN_LENGTH, MAX_LENGTH = 8, 128  # SPEC section 7: no composition rules
BAD_LENGTH = f"Use {MIN_LENGTH} to {MAX_LENGTH} characters."


def acceptable(password: str) -> bool:
    return MIN_LENGTH <= len(password) <= MAX_LENGTH


def _set_password(user: User, password: str) -> None:
    user.password_hash = generate_password_hash(
        password, method=current_app.config["PASSWORD_HASH_METHOD"]
    )
    # A new secret: every session, remembered device and API token ends.
    user.end_all_sessions()
    tokens.revoke_all(user)


# Changing it, signed in ---------------------------------------------------------------------


def _change_binding(user: User) -> str:
    # Bound to the password it replaces: a reset in between kills the code.
    return binding_for("password", user.id, user.password_hash)


class ChangeStart(StrEnum):
    CODE_SENT = "code_sent"  # see `send`: sent, queued or refused
    WRONG_PASSWORD = "wrong_password"


@dataclass(frozen=True)
class ChangeStartResult:
    outcome: ChangeStart
    send: CodeSend | None = None

    @property
    def message(self) -> str:
        if self.outcome == ChangeStart.WRONG_PASSWORD:
            return "That is not your current password."
        return self.send.message if self.send is not None and self.send.refused else ""


def start_password_change(user: User, current_password: str, client: Client) -> ChangeStartResult:
    """With the current password, send a code to the account's number; the new password is
    given with that code (`change_password`)."""
    valid = authenticate(
        user.email, current_password, hash_method=current_app.config["PASSWORD_HASH_METHOD"]
    )
    if valid is None:
        audit.record(audit.Event.SIGN_IN_FAILED, user_id=user.id, ip=client.ip, step="password")
        db.session.commit()
        return ChangeStartResult(ChangeStart.WRONG_PASSWORD)
    send = otp.service().send(
        user,
        OtpPurpose.PASSWORD,
        _change_binding(user),
        client_ip=client.ip,
        text=texts.password_code(),
        resend=False,
    )
    return ChangeStartResult(ChangeStart.CODE_SENT, send)


def password_challenge(user: User) -> OtpChallenge | None:
    return otp.live_challenge(user, OtpPurpose.PASSWORD)


def resend_password_code(user: User, client: Client) -> CodeSend:
    return otp.service().send(
        user,
        OtpPurpose.PASSWORD,
        _change_binding(user),
        client_ip=client.ip,
        text=texts.password_code(),
        resend=True,
    )


def password_resend_blocker(user: User, client: Client) -> SendRefused | None:
    """Why "send a new code" would be refused now (the cool-down aside), if it would."""
    return otp.service().resend_blocker(
        user, OtpPurpose.PASSWORD, _change_binding(user), client_ip=client.ip
    )


class ChangeOutcome(StrEnum):
    CHANGED = "changed"  # every session ended: the caller starts its own again
    BAD_PASSWORD = "bad_password"
    WRONG_CODE = "wrong_code"
    CODE_DEAD = "code_dead"
    LOCKED = "locked"


@dataclass(frozen=True)
class ChangeResult:
    outcome: ChangeOutcome
    tries_left: int = 0
    message: str = ""


def change_password(user: User, code: str, new_password: str, client: Client) -> ChangeResult:
    """The code from the SMS and the new password: set it, end every session, alert."""
    if not acceptable(new_password):
        return ChangeResult(ChangeOutcome.BAD_PASSWORD, message=BAD_LENGTH)
    if password_challenge(user) is None:
        return ChangeResult(
            ChangeOutcome.CODE_DEAD, message="There is no code waiting. Ask for a new one."
        )
    result = otp.service().verify(
        user, OtpPurpose.PASSWORD, _change_binding(user), code, client_ip=client.ip
    )
    if not result.ok:
        db.session.commit()
        if result.outcome == Check.WRONG:
            return ChangeResult(ChangeOutcome.WRONG_CODE, result.tries_left, result.message)
        outcome = (
            ChangeOutcome.LOCKED if result.outcome == Check.LOCKED else ChangeOutcome.CODE_DEAD
        )
        return ChangeResult(outcome, message=result.message)
    _set_password(user, new_password)
    alerts.password_changed(user, reset=False)
    audit.record(audit.Event.PASSWORD_CHANGED, user_id=user.id, ip=client.ip)
    db.session.commit()
    return ChangeResult(
        ChangeOutcome.CHANGED,
        message="Your password is changed. Every other session and device was signed out.",
    )


# Resetting a forgotten one -------------------------------------------------------------------


@dataclass(frozen=True)
class ResetAttempt:
    """A reset asked for an e-mail, known or not; its code (if any) is bound to `nonce`."""

    email: str
    nonce: str

    def binding(self, user: User) -> str:
        return binding_for("reset", user.id, self.nonce)


RESET_SENT = (
    "If {email} belongs to an account with a confirmed phone number, we sent a code to that "
    "number. Enter it here with your new password."
)
RESET_WRONG = "That code is not right, or no longer works. Check it, or ask for a new one."


def _reset_user(attempt: ResetAttempt) -> User | None:
    """The account a reset may be for: it exists and its number is confirmed."""
    user = find_user_by_email(attempt.email)
    return user if user is not None and user.phone_verified else None


def _send_reset_code(user: User, attempt: ResetAttempt, client: Client, *, resend: bool) -> None:
    # A refusal is recorded for the owner and not told: telling would say the account exists.
    otp.service().send(
        user,
        OtpPurpose.RESET,
        attempt.binding(user),
        client_ip=client.ip,
        text=texts.reset_code(),
        resend=resend,
    )


def start_password_reset(email: str, client: Client) -> ResetAttempt:
    """A new reset attempt for `email`; a code goes to its account's confirmed number, if
    there is one. The caller keeps the attempt (the session) and says `RESET_SENT`."""
    attempt = ResetAttempt(normalise_email(email)[:254], secrets.token_urlsafe(16))
    user = _reset_user(attempt)
    audit.record(audit.Event.PASSWORD_RESET_ASKED, user_id=user.id if user else None, ip=client.ip)
    db.session.commit()
    if user is not None:
        _send_reset_code(user, attempt, client, resend=False)
    return attempt


def resend_reset_code(attempt: ResetAttempt, client: Client) -> None:
    user = _reset_user(attempt)
    if user is not None:
        _send_reset_code(user, attempt, client, resend=True)


class ResetOutcome(StrEnum):
    RESET = "reset"  # set, every session ended, and signed in on this client
    BAD_PASSWORD = "bad_password"
    WRONG_CODE = "wrong_code"  # wrong, dead, locked or no such account: one answer for all


@dataclass(frozen=True)
class ResetResult:
    outcome: ResetOutcome
    user: User | None = None
    message: str = ""


def reset_password(
    attempt: ResetAttempt,
    code: str,
    new_password: str,
    client: Client,
    *,
    anonymous_cart: Mapping[int, int] | None = None,
) -> ResetResult:
    """The code from the SMS and a new password: set it, end every session and token, alert
    the number, and sign in on this client (the code proved the phone, as at sign-in)."""
    if not acceptable(new_password):
        return ResetResult(ResetOutcome.BAD_PASSWORD, message=BAD_LENGTH)
    user = _reset_user(attempt)
    if user is None:
        return ResetResult(ResetOutcome.WRONG_CODE, message=RESET_WRONG)
    live = otp.live_challenge(user, OtpPurpose.RESET)
    if live is None or live.binding != attempt.binding(user):
        return ResetResult(ResetOutcome.WRONG_CODE, message=RESET_WRONG)
    result = otp.service().verify(
        user, OtpPurpose.RESET, attempt.binding(user), code, client_ip=client.ip
    )
    if not result.ok:
        db.session.commit()
        return ResetResult(ResetOutcome.WRONG_CODE, message=RESET_WRONG)
    _set_password(user, new_password)
    user.login_code_required = False  # the code just proved the phone
    alerts.password_changed(user, reset=True)
    audit.record(audit.Event.PASSWORD_RESET, user_id=user.id, ip=client.ip)
    finish_sign_in(user, client, anonymous_cart or {})  # commits
    return ResetResult(ResetOutcome.RESET, user, "Your password is reset and you are signed in.")
