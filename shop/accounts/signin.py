"""Signing in as use cases: the password, then a step-up when the rules ask for one.

The caller keeps the pending attempt (the HTML pages in the session, the API behind the
challenge's public id) and starts its own session or token once the outcome says so. On the
site the step-up takes any factor the account has (a passkey, the authenticator app, SMS, a
recovery code), and its SMS goes out at once only when nothing stronger is enrolled; the API
asks for the SMS code.
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
from shop.models import Factor, OtpChallenge, OtpPurpose, StepUp, User
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts
from shop.stepup import Answer, answers, steps

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
    """A new code for the attempt (or its first, asked for instead of a passkey or the app);
    None if its account no longer exists."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    # The first SMS of an attempt is no "resend": inside the cool-down it is queued.
    first = db.session.scalar(
        select(OtpChallenge.id)
        .where(
            OtpChallenge.user_id == user.id,
            OtpChallenge.purpose == OtpPurpose.LOGIN,
            OtpChallenge.binding == attempt.binding,
        )
        .limit(1)
    )
    send = send_login_code(user, attempt, client, resend=first is not None)
    step_up = login_step_up(attempt)
    if send.challenge is not None and step_up is not None:
        steps.extend(step_up, send.challenge.expires_at)
        db.session.commit()
    return send


def login_step_up(attempt: LoginAttempt) -> StepUp | None:
    """The attempt's live step-up (the site's sign-ins), if any."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    return steps.live_step_up(user, OtpPurpose.LOGIN, attempt.binding)


def login_passkey_options(attempt: LoginAttempt) -> dict | None:
    """A passkey challenge for the attempt (single use, 5 minutes), or None if a passkey
    cannot answer it."""
    step_up = login_step_up(attempt)
    if step_up is None or Factor.PASSKEY not in step_up.factor_list:
        return None
    options = steps.passkey_options(db.session.get(User, attempt.user_id), step_up)
    db.session.commit()
    return options


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
    NOT_ALLOWED = "not_allowed"  # a factor the account does not have (not counted)
    NO_ACCOUNT = "no_account"


@dataclass(frozen=True)
class CodeResult:
    outcome: CodeOutcome
    user: User | None = None
    tries_left: int = 0
    message: str = ""
    new_device: bool = False


def check_login_code(
    attempt: LoginAttempt, code: str | dict, client: Client, *, factor: Factor = Factor.SMS
) -> CodeResult:
    """Check the attempt's answer (an SMS or app or recovery code, or a passkey's assertion);
    SIGNED_IN means it was right (the caller then starts a browser session with
    `finish_sign_in`, or issues an API token)."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return CodeResult(CodeOutcome.NO_ACCOUNT, message="Sign in first.")
    step_up = login_step_up(attempt)
    if factor != Factor.SMS:
        if step_up is None:
            return CodeResult(
                CodeOutcome.CODE_DEAD, user, message="This sign-in expired. Sign in again."
            )
        result = answers.answer(
            user, step_up, attempt.binding, Answer(factor, code), client_ip=client.ip
        )
    elif login_challenge(attempt) is None:
        # Expired, used, or replaced by another sign-in, whose code this attempt must not end.
        return CodeResult(
            CodeOutcome.CODE_DEAD, user, message="There is no code waiting. Ask for a new one."
        )
    else:
        result = answers.verify_any(
            user,
            step_up,
            OtpPurpose.LOGIN,
            attempt.binding,
            Answer(Factor.SMS, str(code)),
            client_ip=client.ip,
        )
    if result.outcome == Check.NOT_ALLOWED:
        db.session.commit()
        return CodeResult(CodeOutcome.NOT_ALLOWED, user, message=result.message)
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


def login_challenge(attempt: LoginAttempt) -> OtpChallenge | None:
    """The attempt's live code, if any."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    challenge = otp.live_challenge(user, OtpPurpose.LOGIN)
    if challenge is None or challenge.binding != attempt.binding:
        return None
    return challenge


def sign_out(user: User, client: Client) -> None:
    """Record the sign-out (the caller ends its session)."""
    audit.record(audit.Event.SIGN_OUT, user_id=user.id, ip=client.ip)
    db.session.commit()
