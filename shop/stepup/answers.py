"""Answering a step-up with any factor: checked in the SMS code's order, counted, used once.

An SMS code answers a step-up through `shop.otp` as before (its own row, its own tries); an
app code, a recovery code or a passkey answers it here. Either way a wrong answer counts in
the account's 24-hour failures (`shop.otp.lockout`), the same count and lockout as wrong SMS
codes, and a right one is consumed by one conditional UPDATE in the caller's transaction.
"""

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from shop import alerts, audit, clock, locks, otp
from shop.extensions import db
from shop.models import Factor, Passkey, StepUp, User
from shop.otp import Check, Verification
from shop.otp.outcomes import attempts_left
from shop.stepup import passkeys, recovery, totp
from shop.stepup.steps import take_nonce, tries_left

NOT_ALLOWED = {
    Factor.PASSKEY: "A passkey cannot confirm this: none is set up on your account.",
    Factor.TOTP: "An app code cannot confirm this. Use one of the ways offered on this page.",
    Factor.RECOVERY: "A recovery code cannot confirm this: none is left on your account.",
    Factor.SMS: "An SMS code cannot confirm this. Use one of the ways offered on this page.",
}
PASSKEY_ONLY = "This order can only be confirmed with a passkey."
NO_PASSKEY_CHALLENGE = (
    "The passkey request expired or was already used (they last 5 minutes). Try again."
)


@dataclass(frozen=True)
class Answer:
    factor: Factor
    value: str | dict  # the code typed, or the passkey's assertion (JSON)


def answer(
    user: User, step_up: StepUp, binding_now: str, given: Answer, *, client_ip: str
) -> Verification:
    """Check an app code, a recovery code or a passkey assertion against `step_up` as the
    thing it proves is now (`binding_now`). On success it is consumed (the caller commits).

    The order of checks is the SMS code's: locked, dead, expired, changed, then the answer.
    """
    service = otp.service()
    locks.hold_account(user.id)  # the account's wrong answers are counted one at a time
    if service.lockout.is_locked(user):
        return Verification(Check.LOCKED)
    if step_up.consumed_at is not None or step_up.ended_at is not None:
        return Verification(Check.NO_CODE)
    if given.factor not in step_up.factor_list:
        message = PASSKEY_ONLY if step_up.factor_list == [Factor.PASSKEY] else None
        return Verification(Check.NOT_ALLOWED, detail=message or NOT_ALLOWED[given.factor])
    now = clock.now()
    if now >= step_up.expires_at:
        _end(step_up, "expired")
        return Verification(Check.EXPIRED)
    if not hmac.compare_digest(step_up.binding, binding_now):
        _end(step_up, "binding_changed")
        audit.record(
            audit.Event.CODE_INVALIDATED,
            user_id=user.id,
            ip=client_ip,
            purpose=step_up.purpose,
            factor=str(given.factor),
            reason="changed after the step-up began",
        )
        return Verification(Check.MISMATCH)
    problem = _check(user, step_up, given, now, client_ip)
    if problem is not None:
        return _fail(user, step_up, given.factor, problem, client_ip)
    consumed = db.session.execute(
        update(StepUp)
        .where(
            StepUp.id == step_up.id,
            StepUp.consumed_at.is_(None),
            StepUp.ended_at.is_(None),
            StepUp.failed_attempts < service.policy.max_attempts,
        )
        .values(consumed_at=now, factor=str(given.factor))
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:
        return Verification(Check.NO_CODE)
    audit.record(
        audit.Event.CODE_VERIFIED,
        user_id=user.id,
        ip=client_ip,
        purpose=step_up.purpose,
        factor=str(given.factor),
    )
    return Verification(Check.VERIFIED)


def _check(user: User, step_up: StepUp, given: Answer, now: datetime, client_ip: str) -> str | None:
    """None if the answer proves the step-up, else why not (in words for the person)."""
    if given.factor == Factor.TOTP:
        result = totp.check(totp.app_of(user), str(given.value), now)
        return None if result.outcome == totp.TotpCheck.VERIFIED else result.message
    if given.factor == Factor.RECOVERY:
        if not recovery.use(user, str(given.value)):
            return "That recovery code is not right, or was already used."
        left = recovery.codes_left(user)
        audit.record(audit.Event.RECOVERY_CODE_USED, user_id=user.id, ip=client_ip, left=left)
        alerts.recovery_code_used(user, left)
        return None
    nonce = take_nonce(step_up, now)
    if nonce is None:
        return NO_PASSKEY_CHALLENGE
    result = passkeys.check_assertion(user, given.value, step_up.binding, nonce)
    if result.outcome == passkeys.AssertionOutcome.CLONED:
        audit.record(
            audit.Event.PASSKEY_CLONED,
            user_id=user.id,
            ip=client_ip,
            passkey=result.passkey.name,
            stored_count=result.passkey.sign_count,
            presented_count=result.sign_count,
        )
        return result.message
    if result.outcome != passkeys.AssertionOutcome.VERIFIED:
        return result.message
    # The counter moves only forwards: two racing assertions cannot both keep an old count.
    moved = db.session.execute(
        update(Passkey)
        .where(Passkey.id == result.passkey.id, Passkey.sign_count == result.passkey.sign_count)
        .values(sign_count=result.sign_count, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return None if moved.rowcount == 1 else "This passkey was just used. Try again."


def _fail(
    user: User, step_up: StepUp, factor: Factor, problem: str, client_ip: str
) -> Verification:
    db.session.execute(
        update(StepUp)
        .where(StepUp.id == step_up.id)
        .values(failed_attempts=StepUp.failed_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    locked = otp.service().lockout.count_failure(
        user, str(factor), client_ip=client_ip, purpose=step_up.purpose
    )
    db.session.refresh(step_up)
    if locked:
        _end(step_up, "account_locked")
        return Verification(Check.LOCKED)
    left = tries_left(step_up)
    if left <= 0:
        _end(step_up, "too_many_attempts")
        return Verification(Check.TOO_MANY_ATTEMPTS)
    return Verification(Check.WRONG, tries_left=left, detail=f"{problem} {attempts_left(left)}.")


def _end(step_up: StepUp, reason: str) -> None:
    if step_up.ended_at is None and step_up.consumed_at is None:
        step_up.ended_at = clock.now()
        step_up.end_reason = reason
        db.session.flush()


def verify_any(
    user: User,
    step_up: StepUp | None,
    purpose: str,
    binding_now: str,
    given: Answer,
    *,
    client_ip: str,
    order_id: int | None = None,
) -> Verification:
    """Any factor's answer to the step-up of `purpose`: an SMS code through `shop.otp`, the
    others here. A right SMS code consumes the step-up too (the caller commits)."""
    if given.factor != Factor.SMS:
        if step_up is None:
            return Verification(Check.NO_CODE)
        return answer(user, step_up, binding_now, given, client_ip=client_ip)
    if step_up is not None and Factor.SMS not in step_up.factor_list:
        message = PASSKEY_ONLY if step_up.factor_list == [Factor.PASSKEY] else None
        return Verification(Check.NOT_ALLOWED, detail=message or NOT_ALLOWED[Factor.SMS])
    result = otp.service().verify(
        user, purpose, binding_now, str(given.value), client_ip=client_ip, order_id=order_id
    )
    if step_up is not None and result.ok:
        step_up.consumed_at, step_up.factor = clock.now(), str(Factor.SMS)
    elif step_up is not None and result.outcome == Check.MISMATCH:
        _end(step_up, "binding_changed")
    return result
