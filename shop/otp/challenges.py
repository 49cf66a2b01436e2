"""OTP challenge rows: the live one of a purpose, the tries a thing has used, ending them,
and what the shopper may know of one (`status`, for the code page and the API).

None of this needs the code's key: issuing and checking a code are `shop.otp.codes`.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update

from shop import accounts, clock
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, SmsMessage, SmsStatus, User
from shop.models.types import live_of, open_rows
from shop.otp.outcomes import ChallengeStatus
from shop.otp.policy import OtpPolicy


def live_challenge(user: User, purpose: OtpPurpose) -> OtpChallenge | None:
    return db.session.scalar(
        select(OtpChallenge)
        .where(live_of(OtpChallenge, user.id, purpose))
        .order_by(OtpChallenge.id.desc())
        .limit(1)
    )


def tries_used(user: User, purpose: OtpPurpose, binding: str) -> int:
    """The wrong tries of the last unused code for this thing, live or dead."""
    return (
        db.session.scalar(
            select(OtpChallenge.failed_attempts)
            .where(
                OtpChallenge.user_id == user.id,
                OtpChallenge.purpose == purpose,
                OtpChallenge.binding == binding,
                OtpChallenge.consumed_at.is_(None),
            )
            .order_by(OtpChallenge.id.desc())
            .limit(1)
        )
        or 0
    )


def end_live(user: User, purpose: OtpPurpose, *, reason: str) -> None:
    """End the live code(s) of this purpose and drop their SMS if still unsent."""
    _end_all(live_of(OtpChallenge, user.id, purpose), reason)


def end_live_sent_to(user: User, phone: str, *, reason: str) -> None:
    """End the account's live codes of every purpose that went, or wait to go, to `phone`
    (a number it no longer has), and drop their SMS if still unsent."""
    _end_all(and_(_live_codes(user), OtpChallenge.phone == phone), reason)


def end_live_not_sent_to(user: User, phone: str, *, reason: str) -> None:
    """End the account's live codes of every purpose that went, or wait to go, anywhere but
    `phone` (the one number it trusts again), and drop their SMS if still unsent."""
    _end_all(and_(_live_codes(user), OtpChallenge.phone != phone), reason)


def _live_codes(user: User) -> ColumnElement[bool]:
    return and_(OtpChallenge.user_id == user.id, open_rows(OtpChallenge))


def _end_all(which: ColumnElement[bool], reason: str) -> None:
    for challenge in db.session.scalars(select(OtpChallenge).where(which)).all():
        challenge.ended_at = clock.now()
        challenge.end_reason = reason
        if challenge.sms_id is not None:
            # A message being sent is left to its worker, which drops it rather than try it
            # again (shop.sms.claims.record): the ended challenge, autoflushed before this
            # UPDATE, is the row that worker waits for.
            db.session.execute(
                update(SmsMessage)
                .where(SmsMessage.id == challenge.sms_id, SmsMessage.status == SmsStatus.QUEUED)
                .values(status=SmsStatus.DROPPED, body=SmsMessage.redacted_body)
                .execution_options(synchronize_session=False)
            )
    db.session.flush()


def end(challenge: OtpChallenge, reason: str) -> None:
    if challenge.ended_at is None and challenge.consumed_at is None:
        challenge.ended_at = clock.now()
        challenge.end_reason = reason


def status(challenge: OtpChallenge, policy: OtpPolicy) -> ChallengeStatus:
    """What the shopper may know of a code: where it went, its delivery, its clock."""
    now = clock.now()
    sms = db.session.get(SmsMessage, challenge.sms_id) if challenge.sms_id else None
    live = challenge.consumed_at is None and challenge.ended_at is None
    resend_at = challenge.send_at + policy.resend_cooldown
    return ChallengeStatus(
        public_id=challenge.public_id,
        purpose=OtpPurpose(challenge.purpose),
        masked_phone=accounts.mask_phone(challenge.phone),
        live=live and now < challenge.expires_at,
        end_reason=challenge.end_reason,
        send_at=challenge.send_at,
        expires_at=challenge.expires_at,
        tries_left=max(0, policy.max_attempts - challenge.failed_attempts),
        delivery=SmsStatus(sms.status) if sms else None,
        queued_seconds=_seconds_until(challenge.send_at, now),
        expires_in_seconds=_seconds_until(challenge.expires_at, now),
        resend_in_seconds=_seconds_until(resend_at, now),
    )


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(0, int((when - now).total_seconds() + 0.999))
