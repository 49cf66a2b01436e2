"""A sign-in's step-up: the attempt whose password was right, its code, and its answer.

On the site the step-up takes any factor the account has (a passkey, the authenticator app,
SMS, a recovery code), and its SMS goes out at once only when nothing stronger is enrolled; the
API asks for the SMS code. Signing in once it is answered is `shop.accounts.signin`.
"""

import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from shop import otp
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Factor, OtpChallenge, OtpPurpose, StepUp, User
from shop.otp import Check, CodeSend, SendRefused, binding_for, texts
from shop.stepup import Answer, answers, steps


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
    `shop.accounts.signin.finish_sign_in`, or issues an API token)."""
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


def login_challenge(attempt: LoginAttempt) -> OtpChallenge | None:
    """The attempt's live code, if any."""
    user = db.session.get(User, attempt.user_id)
    if user is None:
        return None
    challenge = otp.live_challenge(user, OtpPurpose.LOGIN)
    if challenge is None or challenge.binding != attempt.binding:
        return None
    return challenge
