"""Signing in as use cases: the password, then a code when the rules ask for one.

The caller keeps the pending attempt (the HTML pages in the session, the API behind the
challenge's public id) and starts its own session or token once the outcome says so.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from sqlalchemy import select

from shop import alerts, audit, clock, otp, risk
from shop import cart as carts
from shop.accounts import authenticate, devices, find_user_by_email
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, User
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts

WRONG_CREDENTIALS = "The e-mail or password is not right."


@dataclass(frozen=True)
class LoginAttempt:
    """A sign-in whose password was right and whose code is awaited. Its code is bound to
    this attempt (a random binding) and no other: a code sent for another sign-in fails."""

    user_id: int
    binding: str

    @classmethod
    def new(cls, user_id: int) -> "LoginAttempt":
        return cls(user_id, binding_for("login", user_id, secrets.token_urlsafe(16)))

    @classmethod
    def of_challenge(cls, public_id: str) -> "LoginAttempt | None":
        """The attempt a live sign-in code was sent for, named by the challenge's public id
        (random: knowing it means having passed the password step)."""
        challenge = db.session.scalar(
            select(OtpChallenge).where(
                OtpChallenge.public_id == public_id, OtpChallenge.purpose == OtpPurpose.LOGIN
            )
        )
        return cls(challenge.user_id, challenge.binding) if challenge is not None else None


class PasswordOutcome(StrEnum):
    SIGNED_IN = "signed_in"  # with `phone_code` set: its number is to be confirmed next
    CODE_NEEDED = "code_needed"  # see `send`: the code was sent, queued or refused
    WRONG_CREDENTIALS = "wrong_credentials"


@dataclass(frozen=True)
class PasswordResult:
    outcome: PasswordOutcome
    user: User | None = None
    attempt: LoginAttempt | None = None
    send: CodeSend | None = None
    new_device: bool = False
    # An account whose number is not confirmed yet: the code sent to confirm it.
    phone_code: CodeSend | None = None

    @property
    def message(self) -> str:
        if self.outcome == PasswordOutcome.WRONG_CREDENTIALS:
            return WRONG_CREDENTIALS
        if self.send is not None and self.send.refused is not None:
            return self.send.message
        return ""


def needs_login_code(user: User, device_id: str | None) -> bool:
    """A code at sign-in: after "not me", or per the login rule (never/new_device/always)."""
    if not user.phone_verified:
        return False
    if user.login_code_required:
        return True
    mode = risk.current_rules().login_mode
    if mode == "always":
        return True
    return mode == "new_device" and not devices.is_known(user, device_id)


def check_password(email: str, password: str, client: Client) -> User | None:
    """The account whose e-mail and password these are, else None, in the same time and
    with the same answer for an unknown e-mail; a failure is audited."""
    user = authenticate(email, password, hash_method=current_app.config["PASSWORD_HASH_METHOD"])
    if user is None:
        known = find_user_by_email(email)
        audit.record(audit.Event.SIGN_IN_FAILED, user_id=known.id if known else None, ip=client.ip)
        db.session.commit()
    return user


def sign_in_with_password(
    email: str, password: str, client: Client, *, anonymous_cart: Mapping[int, int] | None = None
) -> PasswordResult:
    """Check the password; sign in on this browser, or send a sign-in code bound to a new
    attempt."""
    user = check_password(email, password, client)
    if user is None:
        return PasswordResult(PasswordOutcome.WRONG_CREDENTIALS)
    if needs_login_code(user, client.device_id):
        attempt = LoginAttempt.new(user.id)
        send = send_login_code(user, attempt, client, resend=False)
        return PasswordResult(PasswordOutcome.CODE_NEEDED, user, attempt, send)
    new_device = finish_sign_in(user, client, anonymous_cart or {})
    phone_code = None
    if not user.phone_verified:
        # The first sign-in after registering: the number is confirmed by a code next.
        from shop.accounts.verification import phone_challenge, send_phone_code

        if phone_challenge(user) is None:
            phone_code = send_phone_code(user, user.phone, client, resend=False)
    return PasswordResult(
        PasswordOutcome.SIGNED_IN, user, new_device=new_device, phone_code=phone_code
    )


def send_login_code(user: User, attempt: LoginAttempt, client: Client, *, resend: bool) -> CodeSend:
    return otp.service().send(
        user,
        OtpPurpose.LOGIN,
        attempt.binding,
        client_ip=client.ip,
        text=texts.login_code(),
        resend=resend,
    )


def resend_login_code(attempt: LoginAttempt, client: Client) -> CodeSend | None:
    """A new code for the attempt; None if its account no longer exists."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    return send_login_code(user, attempt, client, resend=True)


def login_resend_blocker(attempt: LoginAttempt, client: Client) -> SendRefused | None:
    """Why "send a new code" would be refused now (the cool-down aside), if it would."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    return otp.service().resend_blocker(
        user, OtpPurpose.LOGIN, attempt.binding, client_ip=client.ip
    )


class CodeOutcome(StrEnum):
    SIGNED_IN = "signed_in"
    WRONG_CODE = "wrong_code"
    CODE_DEAD = "code_dead"  # expired, replaced or out of tries: ask for a new one
    LOCKED = "locked"
    NO_ACCOUNT = "no_account"


@dataclass(frozen=True)
class CodeResult:
    outcome: CodeOutcome
    user: User | None = None
    tries_left: int = 0
    message: str = ""
    new_device: bool = False


def check_login_code(attempt: LoginAttempt, code: str, client: Client) -> CodeResult:
    """Check the attempt's code; SIGNED_IN means it was right (the caller then starts a
    browser session with `finish_sign_in`, or issues an API token)."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return CodeResult(CodeOutcome.NO_ACCOUNT, message="Sign in first.")
    if login_challenge(attempt) is None:
        # Expired, used, or replaced by another sign-in, whose code this attempt must not end.
        return CodeResult(
            CodeOutcome.CODE_DEAD, user, message="There is no code waiting. Ask for a new one."
        )
    result = otp.service().verify(
        user, OtpPurpose.LOGIN, attempt.binding, code, client_ip=client.ip
    )
    if result.ok:
        user.login_code_required = False
        db.session.flush()
        return CodeResult(CodeOutcome.SIGNED_IN, user)
    db.session.commit()
    if result.outcome == Check.WRONG:
        return CodeResult(CodeOutcome.WRONG_CODE, user, result.tries_left, result.message)
    if result.outcome == Check.LOCKED:
        return CodeResult(CodeOutcome.LOCKED, user, message=result.message)
    return CodeResult(CodeOutcome.CODE_DEAD, user, message=result.message)


def sign_in_with_code(
    attempt: LoginAttempt,
    code: str,
    client: Client,
    *,
    anonymous_cart: Mapping[int, int] | None = None,
) -> CodeResult:
    """Check the attempt's code; on success the account is signed in on this browser."""
    result = check_login_code(attempt, code, client)
    if result.outcome != CodeOutcome.SIGNED_IN:
        return result
    new_device = finish_sign_in(result.user, client, anonymous_cart or {})
    return CodeResult(CodeOutcome.SIGNED_IN, result.user, new_device=new_device)


def finish_sign_in(user: User, client: Client, anonymous_cart: Mapping[int, int]) -> bool:
    """Record the sign-in: the device (alerting a new one), the audit row, and the cart
    filled before signing in, merged into the account's. Commits; True for a new device."""
    browser = client.browser
    is_new = devices.remember_device(user, client.device_id or "unknown", browser)
    if is_new:
        alerts.new_device(user, browser=browser, ip=client.ip, at=clock.now())
    audit.record(audit.Event.SIGN_IN, user_id=user.id, ip=client.ip, browser=browser)
    if anonymous_cart:
        carts.save_user_cart(user, carts.merge(carts.load_user_cart(user), anonymous_cart))
    db.session.commit()
    return is_new


def login_challenge(attempt: LoginAttempt) -> OtpChallenge | None:
    """The attempt's live code, if any."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    challenge = otp.service().live_challenge(user, OtpPurpose.LOGIN)
    if challenge is None or challenge.binding != attempt.binding:
        return None
    return challenge


def sign_out(user: User, client: Client) -> None:
    """Record the sign-out (the caller ends its session)."""
    audit.record(audit.Event.SIGN_OUT, user_id=user.id, ip=client.ip)
    db.session.commit()
