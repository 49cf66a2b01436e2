"""Step-ups: something to prove (an order, a sign-in, a change of factors), answered by the
strongest factor the account has and the owner's rules allow.

A `StepUp` row is opened with the factors it may be answered with, strongest first, and
replaces the live one of the same purpose; a passkey's challenge to it is a nonce kept on the
row, single use. Answering it, with any factor, is `shop.stepup.answers`.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from shop import clock, locks, otp
from shop.extensions import db
from shop.models import Factor, StepUp, User
from shop.models.types import live_of
from shop.stepup import passkeys, recovery, totp

# SMS is offered at once only when it is the sole factor: a shopper with a passkey or an app
# is never sent an SMS they did not ask for (each costs money and counts in the send caps).
STRONGEST_FIRST = (Factor.PASSKEY, Factor.TOTP, Factor.SMS, Factor.RECOVERY)
PASSKEY_CHALLENGE_LIFETIME = timedelta(seconds=passkeys.CEREMONY_SECONDS)


def enrolled_factors(user: User) -> list[Factor]:
    """The factors `user` can answer a step-up with, strongest first."""
    has = {
        Factor.PASSKEY: bool(passkeys.passkeys_of(user)),
        Factor.TOTP: totp.has_app(user),
        Factor.SMS: user.phone_verified,
        Factor.RECOVERY: recovery.codes_left(user) > 0,
    }
    return [factor for factor in STRONGEST_FIRST if has[factor]]


def allowed_factors(user: User, *, passkey_only: bool = False) -> list[Factor]:
    """The enrolled factors a step-up may take: a passkey alone when the rules ask for one."""
    enrolled = enrolled_factors(user)
    if passkey_only:
        return [Factor.PASSKEY] if Factor.PASSKEY in enrolled else []
    return enrolled


def sms_at_once(factors: list[Factor]) -> bool:
    """Whether to text the code now: only when nothing but SMS (and recovery codes, kept for
    emergencies) could answer."""
    return Factor.SMS in factors and not ({Factor.PASSKEY, Factor.TOTP} & set(factors))


def open_step_up(
    user: User,
    purpose: str,
    binding: str,
    factors: list[Factor],
    *,
    expires_at: datetime,
    order_id: int | None = None,
) -> StepUp:
    """A new step-up (not committed), ending the live one of the same purpose (under the
    account's lock: two opened at once end each other's in turn, never both live)."""
    locks.hold_account(user.id)
    end_live(user, purpose, reason="replaced")
    step_up = StepUp(
        user_id=user.id,
        purpose=purpose,
        binding=binding,
        order_id=order_id,
        factors=",".join(factors),
        created_at=clock.now(),
        expires_at=expires_at,
    )
    db.session.add(step_up)
    db.session.flush()
    return step_up


def end_live(user: User, purpose: str, *, reason: str) -> None:
    now = clock.now()
    db.session.execute(
        update(StepUp)
        .where(live_of(StepUp, user.id, purpose))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )


def live_step_up(user: User, purpose: str, binding: str | None = None) -> StepUp | None:
    """The live step-up of `purpose` (for `binding`, if given)."""
    found = db.session.scalar(
        select(StepUp).where(live_of(StepUp, user.id, purpose)).order_by(StepUp.id.desc()).limit(1)
    )
    if found is not None and binding is not None and found.binding != binding:
        return None
    return found


def by_public_id(public_id: str) -> StepUp | None:
    return db.session.scalar(select(StepUp).where(StepUp.public_id == public_id))


def extend(step_up: StepUp, expires_at: datetime) -> None:
    """An SMS sent late (asked for, or after a cool-down) keeps the step-up open with it."""
    step_up.expires_at = max(step_up.expires_at, expires_at)


def tries_left(step_up: StepUp) -> int:
    return max(0, otp.service().policy.max_attempts - step_up.failed_attempts)


# Passkey challenges ----------------------------------------------------------------------------


def passkey_options(user: User, step_up: StepUp) -> dict:
    """A fresh passkey challenge for `step_up` (not committed): single use, 5 minutes, derived
    from its binding and a new nonce. An earlier challenge of it stops working."""
    step_up.webauthn_nonce = secrets.token_hex(16)
    step_up.webauthn_expires_at = clock.now() + PASSKEY_CHALLENGE_LIFETIME
    db.session.flush()
    return passkeys.request_options(user, step_up.binding, step_up.webauthn_nonce)


def take_nonce(step_up: StepUp, now: datetime) -> str | None:
    """The step-up's passkey nonce, taken so that it can never be used again; None if there is
    none live. One conditional UPDATE: of two requests with one challenge, one gets it."""
    nonce = step_up.webauthn_nonce
    if nonce is None:
        return None
    taken = db.session.execute(
        update(StepUp)
        .where(
            StepUp.id == step_up.id,
            StepUp.webauthn_nonce == nonce,
            StepUp.webauthn_expires_at > now,
        )
        .values(webauthn_nonce=None, webauthn_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return nonce if taken.rowcount == 1 else None
