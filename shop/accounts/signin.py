"""Signing in as use cases: the password, then a step-up when the rules ask for one.

The caller keeps the pending attempt (the HTML pages in the session, the API behind the
challenge's public id) and starts its own session or token once the outcome says so. The
step-up itself (the attempt, its code, any factor's answer) is `shop.accounts.signin_stepup`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app

from shop import alerts, audit, clock, otp, risk
from shop import cart as carts
from shop.accounts import authenticate, devices, find_user_by_email
from shop.accounts.client import Client
from shop.accounts.signin_stepup import (
    CodeOutcome,
    CodeResult,
    LoginAttempt,
    check_login_code,
    send_login_code,
)
from shop.extensions import db
from shop.models import Factor, OtpPurpose, User
from shop.otp import CodeSend
from shop.stepup import steps

WRONG_CREDENTIALS = "The e-mail or password is not right."


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
    email: str,
    password: str,
    client: Client,
    *,
    anonymous_cart: Mapping[int, int] | None = None,
    offer_factors: bool = False,
) -> PasswordResult:
    """Check the password; sign in on this browser, or open a step-up bound to a new attempt.
    With `offer_factors` (the site) it takes any enrolled factor and the SMS code is sent only
    when nothing stronger is enrolled (`send` is then None); else the code is sent."""
    user = check_password(email, password, client)
    if user is None:
        return PasswordResult(PasswordOutcome.WRONG_CREDENTIALS)
    if needs_login_code(user, client.device_id):
        attempt = LoginAttempt.new(user.id)
        factors = steps.allowed_factors(user) if offer_factors else []
        if offer_factors:
            steps.open_step_up(
                user,
                OtpPurpose.LOGIN,
                attempt.binding,
                factors,
                expires_at=clock.now() + otp.service().policy.validity,
            )
        if factors and not steps.sms_at_once(factors):
            db.session.commit()
            return PasswordResult(PasswordOutcome.CODE_NEEDED, user, attempt)
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


def sign_in_with_code(
    attempt: LoginAttempt,
    code: str | dict,
    client: Client,
    *,
    anonymous_cart: Mapping[int, int] | None = None,
    factor: Factor = Factor.SMS,
) -> CodeResult:
    """Check the attempt's answer; on success the account is signed in on this browser."""
    result = check_login_code(attempt, code, client, factor=factor)
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


def sign_out(user: User, client: Client) -> None:
    """Record the sign-out (the caller ends its session)."""
    audit.record(audit.Event.SIGN_OUT, user_id=user.id, ip=client.ip)
    db.session.commit()
