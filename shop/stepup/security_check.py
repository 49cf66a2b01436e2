"""Proving it is you before a change to the account's factors: a step-up of this very
sign-in, answered by any enrolled factor (the SMS sent at once only when it is the only one).
On success the caller renews the session as stepped up (`enrolment.is_fresh` then holds)."""

import hashlib
from dataclasses import dataclass

from shop import clock, otp
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import Factor, OtpPurpose, StepUp, User
from shop.otp import CodeSend, SendRefused, Verification, binding_for, texts
from shop.stepup import answers, steps


def security_binding(user: User) -> str:
    """What the security step-up proves: this account, in this very sign-in."""
    session_key = hashlib.sha256((user.session_id or "").encode()).hexdigest()
    return binding_for("security", user.id, session_key)


@dataclass(frozen=True)
class SecurityCheck:
    step_up: StepUp
    send: CodeSend | None = None  # the SMS, when it is the only factor or was asked for


def start_security_check(user: User, client: Client) -> SecurityCheck:
    """A step-up of this sign-in with any factor; the SMS goes at once only if it is the
    only one."""
    factors = steps.allowed_factors(user)
    step_up = steps.open_step_up(
        user,
        OtpPurpose.SECURITY,
        security_binding(user),
        factors,
        expires_at=clock.now() + otp.service().policy.validity,
    )
    db.session.commit()
    send = send_security_code(user, client, resend=False) if steps.sms_at_once(factors) else None
    return SecurityCheck(step_up, send)


def security_step_up(user: User) -> StepUp | None:
    return steps.live_step_up(user, OtpPurpose.SECURITY, security_binding(user))


def security_passkey_options(user: User) -> dict | None:
    """A passkey challenge for the security step-up; None if no passkey may answer it."""
    step_up = security_step_up(user)
    if step_up is None or Factor.PASSKEY not in step_up.factor_list:
        return None
    options = steps.passkey_options(user, step_up)
    db.session.commit()
    return options


def send_security_code(user: User, client: Client, *, resend: bool) -> CodeSend:
    step_up = security_step_up(user)
    send = otp.service().send(
        user,
        OtpPurpose.SECURITY,
        security_binding(user),
        client_ip=client.ip,
        text=texts.security_code(),
        resend=resend,
    )
    if step_up is not None and send.challenge is not None:
        steps.extend(step_up, send.challenge.expires_at)
        db.session.commit()
    return send


def security_resend_blocker(user: User, client: Client) -> SendRefused | None:
    return otp.service().resend_blocker(
        user, OtpPurpose.SECURITY, security_binding(user), client_ip=client.ip
    )


def confirm_security_check(user: User, given: answers.Answer, client: Client) -> Verification:
    """Check the answer; on success the caller renews the session as stepped up."""
    result = answers.verify_any(
        user,
        security_step_up(user),
        OtpPurpose.SECURITY,
        security_binding(user),
        given,
        client_ip=client.ip,
    )
    db.session.commit()
    return result
