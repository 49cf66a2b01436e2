"""The account's step-up lockout: wrong answers of every factor in the last 24 hours (SPEC
section 5).

One count for the account, whatever answered wrong (an SMS code, an app code, a recovery code,
a passkey): at `max_account_failures` step-up is locked and the holder alerted, until the
window moves on or an owner unlocks it (`step_up_unlocked_at`, after which earlier failures
no longer count).
"""

from sqlalchemy import func, select

from shop import alerts, audit, clock
from shop.extensions import db
from shop.models import OtpFailure, User
from shop.otp.policy import OtpPolicy


class Lockout:
    """The lockout of one app's policy: its window and its limit."""

    def __init__(self, policy: OtpPolicy) -> None:
        self.policy = policy

    def failures_in_window(self, user: User) -> int:
        """Wrong answers in the last 24 h, after any unlock by an owner."""
        since = clock.now() - self.policy.account_window
        if user.step_up_unlocked_at is not None:
            since = max(since, user.step_up_unlocked_at)
        return db.session.scalar(
            select(func.count(OtpFailure.id)).where(
                OtpFailure.user_id == user.id, OtpFailure.at > since
            )
        )

    def is_locked(self, user: User) -> bool:
        return self.failures_in_window(user) >= self.policy.max_account_failures

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
        if it is the one that locks step-up, which then alerts the account holder."""
        db.session.add(OtpFailure(user_id=user.id, challenge_id=challenge_id, factor=factor))
        db.session.flush()
        audit.record(
            audit.Event.CODE_FAILED, user_id=user.id, ip=client_ip, purpose=purpose, factor=factor
        )
        if self.failures_in_window(user) != self.policy.max_account_failures:
            return False
        audit.record(audit.Event.STEP_UP_LOCKED, user_id=user.id, ip=client_ip)
        alerts.code_locked(user)
        return True
