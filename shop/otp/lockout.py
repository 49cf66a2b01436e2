"""The account's step-up lockout: wrong answers of every factor in the last 24 hours (SPEC
section 5).

One count for the account, whatever answered wrong (an SMS code, an app code, a recovery code,
a passkey): at `max_account_failures` step-up is locked and the holder alerted, until the
window moves on or an owner unlocks it (`step_up_unlocked_at`, after which earlier failures
no longer count).

A wrong password-reset code is counted apart, with the same limit: a reset needs only the
account's e-mail, so if its wrong codes counted here anyone could lock any account's sign-in
and orders for a day, day after day. Ten of them lock only the reset by SMS, and say nothing
to anyone (the reset's codes reach the holder's phone already). A reset is refused too while
step-up is locked: a locked account gets no more codes of any kind.
"""

from sqlalchemy import func, select

from shop import alerts, audit, clock
from shop.extensions import db
from shop.models import OtpFailure, OtpPurpose, User
from shop.otp.policy import OtpPolicy

# The `factor` of a wrong password-reset code's failure: what counts it apart.
RESET = "reset"


class Lockout:
    """The lockout of one app's policy: its window and its limit."""

    def __init__(self, policy: OtpPolicy) -> None:
        self.policy = policy

    def failures_in_window(self, user: User, *, reset: bool = False) -> int:
        """Wrong answers to a step-up in the last 24 h, after any unlock by an owner (with
        `reset`: wrong password-reset codes instead)."""
        since = clock.now() - self.policy.account_window
        if user.step_up_unlocked_at is not None:
            since = max(since, user.step_up_unlocked_at)
        kind = OtpFailure.factor == RESET if reset else OtpFailure.factor != RESET
        return db.session.scalar(
            select(func.count(OtpFailure.id)).where(
                OtpFailure.user_id == user.id, OtpFailure.at > since, kind
            )
        )

    def is_locked(self, user: User, purpose: str | None = None) -> bool:
        """Whether the account's step-up is locked; for `purpose` "reset", whether its reset
        is (by its own count, or with step-up)."""
        limit = self.policy.max_account_failures
        if purpose == OtpPurpose.RESET and self.failures_in_window(user, reset=True) >= limit:
            return True
        return self.failures_in_window(user) >= limit

    def count_failure(
        self,
        user: User,
        factor: str,
        *,
        client_ip: str,
        purpose: str,
        challenge_id: int | None = None,
    ) -> bool:
        """One wrong answer, of any factor, in the account's 24-hour count (audited); True
        if it is the one that locks step-up, which then alerts the account holder. A wrong
        reset code goes in the reset's own count; True once that is locked. The caller holds
        the account's lock (`shop.locks`): the count moves one answer at a time."""
        reset = purpose == OtpPurpose.RESET
        counted = RESET if reset else factor
        db.session.add(OtpFailure(user_id=user.id, challenge_id=challenge_id, factor=counted))
        db.session.flush()
        audit.record(
            audit.Event.CODE_FAILED, user_id=user.id, ip=client_ip, purpose=purpose, factor=factor
        )
        if reset:
            return self.is_locked(user, purpose)
        if self.failures_in_window(user) != self.policy.max_account_failures:
            return False
        audit.record(audit.Event.STEP_UP_LOCKED, user_id=user.id, ip=client_ip)
        alerts.code_locked(user)
        return True
