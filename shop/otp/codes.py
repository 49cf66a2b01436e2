"""One-time codes: issue, verify, consume (SPEC section 5).

A code is 6 (or 8) digits from `secrets`, sent by SMS through the outbox and stored only as
a keyed HMAC over the code and everything it is bound to (user, purpose, binding). The
callers are the use cases, which own the transaction: a code is sent only if their
transaction commits, and consumed in the same transaction as the change it authorises.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from shop import accounts, alerts, audit, clock, settings
from shop.accounts.phone import phone_country
from shop.extensions import db
from shop.models import OtpChallenge, OtpFailure, OtpPurpose, SmsKind, SmsMessage, SmsStatus, User
from shop.otp import limits
from shop.otp.limits import Refusal, SendRefused, SendRequest
from shop.otp.policy import OtpPolicy
from shop.sms import queue_sms, sealing

SMS_KIND = {
    OtpPurpose.LOGIN: SmsKind.OTP_LOGIN,
    OtpPurpose.PHONE: SmsKind.OTP_PHONE,
    OtpPurpose.ORDER: SmsKind.OTP_ORDER,
    OtpPurpose.PASSWORD: SmsKind.OTP_PASSWORD,
    OtpPurpose.RESET: SmsKind.OTP_RESET,
}
REDACTED = "••••••"


class Check(StrEnum):
    """What a submitted code turned out to be."""

    VERIFIED = "verified"
    WRONG = "wrong"  # tries are left on this code
    EXPIRED = "expired"
    NO_CODE = "no_code"  # none is live: never sent, replaced, used or ended
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # this was the code's last try
    LOCKED = "locked"  # too many wrong codes on the account today
    MISMATCH = "mismatch"  # what it was bound to changed since it was sent


CHECK_MESSAGES = {
    Check.VERIFIED: "Code accepted.",
    Check.EXPIRED: "That code has expired. Ask for a new one.",
    Check.NO_CODE: "There is no code waiting. Ask for a new one.",
    Check.TOO_MANY_ATTEMPTS: "Too many wrong codes: this code no longer works.",
    Check.LOCKED: "Too many wrong codes today: SMS verification is locked on this account.",
    Check.MISMATCH: "The details changed after the code was sent, so it no longer works.",
}


@dataclass(frozen=True)
class Verification:
    outcome: Check
    tries_left: int = 0
    challenge: OtpChallenge | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Check.VERIFIED

    @property
    def message(self) -> str:
        if self.outcome == Check.WRONG:
            return f"That code is not right. {self.tries_left} attempts left."
        return CHECK_MESSAGES[self.outcome]


class Sent(StrEnum):
    """What became of a request for a code."""

    SENT = "sent"  # on its way now
    QUEUED = "queued"  # goes out when the number's cool-down ends
    REFUSED = "refused"


@dataclass(frozen=True)
class CodeSend:
    outcome: Sent
    challenge: OtpChallenge | None = None
    refused: SendRefused | None = None

    @classmethod
    def of(cls, challenge: OtpChallenge) -> "CodeSend":
        queued = challenge.send_at > challenge.created_at
        return cls(Sent.QUEUED if queued else Sent.SENT, challenge)

    @property
    def message(self) -> str:
        if self.refused is not None:
            return self.refused.message
        if self.outcome == Sent.QUEUED:
            return (
                "A code was sent to this number a moment ago: the new one follows in a few seconds."
            )
        return "A new code is on its way. The old one no longer works."


def binding_for(*parts: object) -> str:
    """A stable hash of what a code authorises (order ref, amount, items, address, number...)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()


def service() -> "Otp":
    """The app's OTP service (its policy and key), made by `create_app`."""
    return current_app.extensions["otp"]


class Otp:
    """The OTP policy of one app: its numbers and its HMAC key. The countries it may text are
    the owner's setting (`shop.settings.allowed_countries`), read at each send."""

    def __init__(self, policy: OtpPolicy, key: bytes) -> None:
        self.policy = policy
        self._key = key
        self._code_format = re.compile(rf"[0-9]{{{policy.digits}}}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Otp":
        secret = config.get("OTP_HMAC_KEY") or config["SECRET_KEY"]
        key = hmac.new(str(secret).encode(), b"shop.otp.code", hashlib.sha256).digest()
        return cls(OtpPolicy.from_config(config), key)

    def _digest(self, challenge: OtpChallenge, code: str) -> str:
        message = f"{challenge.user_id}|{challenge.purpose}|{challenge.binding}|{code}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    # Sending -----------------------------------------------------------------------------

    def issue(
        self,
        user: User,
        purpose: OtpPurpose,
        binding: str,
        *,
        client_ip: str,
        text: Callable[[str], str],
        phone: str | None = None,
        order_id: int | None = None,
        resend: bool = False,
        by_owner: bool = False,
    ) -> OtpChallenge:
        """Queue a new code for `purpose`, replacing any live one; raise SendRefused if not
        allowed. The code goes out at once, or when the number's cool-down ends
        (`challenge.send_at`); it works for `validity` from then.

        `text(code)` builds the SMS; it is called twice, the second time with a mask, for the
        copy that replaces the message once it has gone. `phone` is the account's verified
        number unless a new number is being verified. `resend` is an explicit "send a new
        code", which the cool-down refuses instead of queueing. `by_owner` is a code an owner
        asked for from their review: the per-address caps, made against one anonymous source
        texting many numbers, do not count it (the per-number caps still do).
        """
        target = phone or user.phone
        request = SendRequest(target, client_ip, str(purpose), user.id, resend, by_owner)
        self._check_recipient(user, request, phone_is_new=phone is not None)
        limits.lock(request)
        now = clock.now()
        if self.is_locked(user):
            raise request.refuse(Refusal.STEP_UP_LOCKED)
        # A resend never resets a count: the new code takes over the wrong tries of the last
        # code for the same thing, live or dead.
        carried = self._tries_used(user, purpose, binding)
        if carried >= self.policy.max_attempts:
            raise request.refuse(Refusal.NO_TRIES_LEFT)
        send_at = limits.send_time(self.policy, request, now)
        self._end_live(user, purpose, reason="replaced")
        code = "".join(secrets.choice("0123456789") for _ in range(self.policy.digits))
        challenge = OtpChallenge(
            user_id=user.id,
            purpose=purpose,
            binding=binding,
            order_id=order_id,
            phone=target,
            country=phone_country(target),
            client_ip=client_ip,
            code_hmac="",
            failed_attempts=carried,
            created_at=now,
            send_at=send_at,
            expires_at=send_at + self.policy.validity,
        )
        challenge.code_hmac = self._digest(challenge, code)
        sms = queue_sms(
            target,
            sealing.seal().seal(text(code), to_number=target),
            SMS_KIND[purpose],
            user_id=user.id,
            redacted_body=text(REDACTED),
            expires_at=challenge.expires_at,
            send_at=send_at,
            order_id=order_id,
        )
        db.session.add(challenge)
        db.session.flush()
        challenge.sms_id = sms.id
        audit.record(
            audit.Event.CODE_SENT,
            user_id=user.id,
            ip=client_ip,
            purpose=str(purpose),
            queued=send_at > now,
        )
        return challenge

    def _check_recipient(self, user: User, request: SendRequest, *, phone_is_new: bool) -> None:
        if not phone_is_new and not user.phone_verified:
            raise request.refuse(Refusal.NUMBER_NOT_VERIFIED)
        try:
            accounts.normalise_phone(request.phone, settings.allowed_countries())
        except accounts.InvalidPhone as error:
            reason = (
                Refusal.COUNTRY_NOT_ALLOWED if error.country_not_allowed else Refusal.INVALID_NUMBER
            )
            raise request.refuse(reason, message=str(error)) from None

    def _tries_used(self, user: User, purpose: OtpPurpose, binding: str) -> int:
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

    def _end_live(self, user: User, purpose: OtpPurpose, *, reason: str) -> None:
        """End the live code(s) of this purpose and drop their SMS if still unsent."""
        live = db.session.scalars(
            select(OtpChallenge).where(
                OtpChallenge.user_id == user.id,
                OtpChallenge.purpose == purpose,
                OtpChallenge.consumed_at.is_(None),
                OtpChallenge.ended_at.is_(None),
            )
        ).all()
        for challenge in live:
            challenge.ended_at = clock.now()
            challenge.end_reason = reason
            if challenge.sms_id is not None:
                db.session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.id == challenge.sms_id, SmsMessage.status == SmsStatus.QUEUED)
                    .values(status=SmsStatus.DROPPED, body=SmsMessage.redacted_body)
                    .execution_options(synchronize_session=False)
                )
        db.session.flush()

    def resend_blocker(
        self,
        user: User,
        purpose: OtpPurpose,
        binding: str,
        *,
        client_ip: str,
        phone: str | None = None,
    ) -> SendRefused | None:
        """What would refuse a new code now, the cool-down aside (pages count that down);
        None if one could be sent. It only reads: a send decides again, atomically."""
        request = SendRequest(phone or user.phone, client_ip, str(purpose), user.id)
        try:
            self._check_recipient(user, request, phone_is_new=phone is not None)
            if self.is_locked(user):
                raise request.refuse(Refusal.STEP_UP_LOCKED)
            if self._tries_used(user, purpose, binding) >= self.policy.max_attempts:
                raise request.refuse(Refusal.NO_TRIES_LEFT)
            limits.send_time(self.policy, request, clock.now())
        except SendRefused as refused:
            return refused
        return None

    def refused(self, refused: SendRefused) -> CodeSend:
        """After a refusal: undo the caller's transaction, keep a record of why, commit."""
        db.session.rollback()
        limits.record(refused)
        db.session.commit()
        return CodeSend(Sent.REFUSED, refused=refused)

    def send(self, user: User, purpose: OtpPurpose, binding: str, **options) -> CodeSend:
        """`issue` and commit; a refusal is recorded and said, never raised."""
        try:
            challenge = self.issue(user, purpose, binding, **options)
        except SendRefused as refused:
            return self.refused(refused)
        db.session.commit()
        return CodeSend.of(challenge)

    # Checking ----------------------------------------------------------------------------

    def live_challenge(self, user: User, purpose: OtpPurpose) -> OtpChallenge | None:
        return db.session.scalar(
            select(OtpChallenge)
            .where(
                OtpChallenge.user_id == user.id,
                OtpChallenge.purpose == purpose,
                OtpChallenge.consumed_at.is_(None),
                OtpChallenge.ended_at.is_(None),
            )
            .order_by(OtpChallenge.id.desc())
            .limit(1)
        )

    def failures_in_window(self, user: User) -> int:
        """Wrong codes in the last 24 h, after any unlock by an owner."""
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

    def verify(
        self,
        user: User,
        purpose: OtpPurpose,
        binding: str,
        submitted: str,
        *,
        client_ip: str,
        order_id: int | None = None,
    ) -> Verification:
        """Check `submitted`; on success the code is consumed (the caller commits).

        Input that is not exactly the right number of ASCII digits counts as a wrong code.
        With `order_id`, only a code sent for that order is considered.
        """
        if self.is_locked(user):
            return Verification(Check.LOCKED)
        challenge = self.live_challenge(user, purpose)
        if challenge is None or (order_id is not None and challenge.order_id != order_id):
            return Verification(Check.NO_CODE)
        now = clock.now()
        if now >= challenge.expires_at:
            self._end(challenge, "expired")
            return Verification(Check.EXPIRED, challenge=challenge)
        if not hmac.compare_digest(challenge.binding, binding):
            self._end(challenge, "binding_changed")
            audit.record(
                audit.Event.CODE_INVALIDATED,
                user_id=user.id,
                ip=client_ip,
                purpose=str(purpose),
                reason="changed after the code was sent",
            )
            return Verification(Check.MISMATCH, challenge=challenge)
        code = submitted.replace(" ", "")[:64]
        if self._code_format.fullmatch(code) and hmac.compare_digest(
            challenge.code_hmac, self._digest(challenge, code)
        ):
            if self._consume(challenge, now):
                audit.record(
                    audit.Event.CODE_VERIFIED, user_id=user.id, ip=client_ip, purpose=str(purpose)
                )
                return Verification(Check.VERIFIED, challenge=challenge)
            return Verification(Check.NO_CODE)
        return self._fail(user, challenge, client_ip)

    def _consume(self, challenge: OtpChallenge, now: datetime) -> bool:
        """One conditional UPDATE: of any number of concurrent checks, one succeeds."""
        result = db.session.execute(
            update(OtpChallenge)
            .where(
                OtpChallenge.id == challenge.id,
                OtpChallenge.consumed_at.is_(None),
                OtpChallenge.ended_at.is_(None),
                OtpChallenge.expires_at > now,
                OtpChallenge.failed_attempts < self.policy.max_attempts,
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def _fail(self, user: User, challenge: OtpChallenge, client_ip: str) -> Verification:
        db.session.execute(
            update(OtpChallenge)
            .where(OtpChallenge.id == challenge.id)
            .values(failed_attempts=OtpChallenge.failed_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.add(OtpFailure(user_id=user.id, challenge_id=challenge.id))
        db.session.flush()
        db.session.refresh(challenge)
        audit.record(
            audit.Event.CODE_FAILED, user_id=user.id, ip=client_ip, purpose=challenge.purpose
        )
        failures = self.failures_in_window(user)
        if failures == self.policy.max_account_failures:
            self._end(challenge, "account_locked")
            audit.record(audit.Event.STEP_UP_LOCKED, user_id=user.id, ip=client_ip)
            alerts.code_locked(user)
            return Verification(Check.LOCKED, challenge=challenge)
        left = self.policy.max_attempts - challenge.failed_attempts
        if left <= 0:
            self._end(challenge, "too_many_attempts")
            return Verification(Check.TOO_MANY_ATTEMPTS, challenge=challenge)
        return Verification(Check.WRONG, tries_left=left, challenge=challenge)

    @staticmethod
    def _end(challenge: OtpChallenge, reason: str) -> None:
        if challenge.ended_at is None and challenge.consumed_at is None:
            challenge.ended_at = clock.now()
            challenge.end_reason = reason

    # Describing ----------------------------------------------------------------------------

    def status(self, challenge: OtpChallenge) -> "ChallengeStatus":
        """What the shopper may know of a code: where it went, its delivery, its clock."""
        now = clock.now()
        sms = db.session.get(SmsMessage, challenge.sms_id) if challenge.sms_id else None
        live = challenge.consumed_at is None and challenge.ended_at is None
        resend_at = challenge.send_at + self.policy.resend_cooldown
        return ChallengeStatus(
            public_id=challenge.public_id,
            purpose=OtpPurpose(challenge.purpose),
            masked_phone=accounts.mask_phone(challenge.phone),
            live=live and now < challenge.expires_at,
            end_reason=challenge.end_reason,
            send_at=challenge.send_at,
            expires_at=challenge.expires_at,
            tries_left=max(0, self.policy.max_attempts - challenge.failed_attempts),
            delivery=SmsStatus(sms.status) if sms else None,
            queued_seconds=_seconds_until(challenge.send_at, now),
            expires_in_seconds=_seconds_until(challenge.expires_at, now),
            resend_in_seconds=_seconds_until(resend_at, now),
        )


@dataclass(frozen=True)
class ChallengeStatus:
    public_id: str
    purpose: OtpPurpose
    masked_phone: str
    live: bool
    end_reason: str | None
    send_at: datetime
    expires_at: datetime
    tries_left: int
    delivery: SmsStatus | None
    queued_seconds: int  # 0 once it may go out
    expires_in_seconds: int
    resend_in_seconds: int


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(0, int((when - now).total_seconds() + 0.999))
