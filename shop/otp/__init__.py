"""One-time passwords for step-up verification: issue, resend, verify, consume (SPEC 5).

A code is 6 (or 8) digits from `secrets`, sent by SMS through the outbox and stored only as
a keyed HMAC over the code and everything it is bound to (user, purpose, binding). The
caller commits: a code is sent only if the caller's transaction commits, and a code is
consumed in the same transaction as the change it authorises.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from shop import accounts, alerts, audit, clock
from shop.extensions import db
from shop.models import OtpChallenge, OtpFailure, OtpPurpose, SmsKind, SmsMessage, SmsStatus, User
from shop.otp.policy import OtpPolicy
from shop.sms import queue_sms

__all__ = ["Otp", "OtpPolicy", "SendRefused", "Verification", "binding_for"]

SMS_KIND = {
    OtpPurpose.LOGIN: SmsKind.OTP_LOGIN,
    OtpPurpose.PHONE: SmsKind.OTP_PHONE,
    OtpPurpose.ORDER: SmsKind.OTP_ORDER,
}
REDACTED = "••••••"


class SendRefused(Exception):
    """No code was sent; `message` is safe to show and `retry_after` is in seconds, if known."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Verification:
    ok: bool
    outcome: str  # verified | wrong | expired | no_code | too_many_attempts | locked | mismatch
    attempts_left: int = 0
    challenge: OtpChallenge | None = None

    @property
    def message(self) -> str:
        return {
            "verified": "Code accepted.",
            "wrong": f"That code is not right. {self.attempts_left} attempts left.",
            "expired": "That code has expired. Ask for a new one.",
            "no_code": "There is no code waiting. Ask for a new one.",
            "too_many_attempts": "Too many wrong codes: this code no longer works. Ask again.",
            "locked": "Too many wrong codes today: SMS verification is locked on this account.",
            "mismatch": "The details changed after the code was sent, so it no longer works.",
        }[self.outcome]


def binding_for(*parts: object) -> str:
    """A stable hash of what a code authorises (order ref, amount, items, address, number...)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()


class Otp:
    """The OTP policy of one app: its numbers, its HMAC key and the countries it may text."""

    def __init__(self, policy: OtpPolicy, key: bytes, allowed_countries: tuple[str, ...]) -> None:
        self.policy = policy
        self._key = key
        self.allowed_countries = allowed_countries
        self._code_format = re.compile(rf"[0-9]{{{policy.digits}}}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Otp":
        secret = config.get("OTP_HMAC_KEY") or config["SECRET_KEY"]
        key = hmac.new(str(secret).encode(), b"shop.otp.code", hashlib.sha256).digest()
        return cls(OtpPolicy.from_config(config), key, tuple(config["SMS_ALLOWED_COUNTRIES"]))

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
    ) -> OtpChallenge:
        """Send a new code for `purpose`, replacing any live one; raise SendRefused if not allowed.

        `text(code)` builds the SMS; it is called twice, the second time with a mask, for the
        copy that replaces the message once it has gone. `phone` is the account's verified
        number unless a new number is being verified.
        """
        now = clock.now()
        target = phone or user.phone
        self._check_can_send(user, purpose, target, client_ip, phone_is_new=phone is not None)
        replaced = self._end_live(user, purpose, reason="replaced")
        # A resend never resets a count: the new code inherits the wrong tries of the old one.
        carried = max(
            (old.failed_attempts for old in replaced if old.binding == binding), default=0
        )
        code = "".join(secrets.choice("0123456789") for _ in range(self.policy.digits))
        challenge = OtpChallenge(
            user_id=user.id,
            purpose=purpose,
            binding=binding,
            order_id=order_id,
            phone=target,
            client_ip=client_ip,
            code_hmac="",
            failed_attempts=carried,
            created_at=now,
            expires_at=now + self.policy.validity,
        )
        challenge.code_hmac = self._digest(challenge, code)
        sms = queue_sms(
            target,
            text(code),
            SMS_KIND[purpose],
            user_id=user.id,
            redacted_body=text(REDACTED),
            expires_at=challenge.expires_at,
        )
        db.session.add(challenge)
        db.session.flush()
        challenge.sms_id = sms.id
        audit.record(audit.Event.CODE_SENT, user_id=user.id, ip=client_ip, purpose=str(purpose))
        return challenge

    def _check_can_send(
        self, user: User, purpose: OtpPurpose, phone: str, client_ip: str, *, phone_is_new: bool
    ) -> None:
        if self.is_locked(user):
            raise SendRefused(
                "Too many wrong codes today: SMS verification is locked on this account."
            )
        if not phone_is_new and not user.phone_verified:
            raise SendRefused(
                "Confirm your phone number first: codes go only to a verified number."
            )
        try:
            accounts.normalise_phone(phone, self.allowed_countries)
        except accounts.InvalidPhone as error:
            raise SendRefused(str(error)) from None
        now = clock.now()
        sent_to_number = select(OtpChallenge.created_at).where(OtpChallenge.phone == phone)
        # The cool-down is between codes for the same thing (resends); a sign-in code and
        # then an order code a few seconds later are two things, and both count in the caps.
        last = db.session.scalar(
            sent_to_number.where(OtpChallenge.purpose == purpose)
            .order_by(OtpChallenge.created_at.desc())
            .limit(1)
        )
        if last is not None and now - last < self.policy.resend_cooldown:
            wait = self.policy.resend_cooldown - (now - last)
            raise SendRefused(
                "Please wait before asking for another code.", retry_after=_seconds(wait)
            )
        self._check_quota(
            sent_to_number,
            now - timedelta(minutes=10),
            self.policy.sends_per_number_10_min,
            timedelta(minutes=10),
            "Too many codes sent to this number: try again in a few minutes.",
        )
        self._check_quota(
            sent_to_number,
            now - timedelta(days=1),
            self.policy.sends_per_number_day,
            timedelta(days=1),
            "Too many codes sent to this number today.",
        )
        self._check_quota(
            select(OtpChallenge.created_at).where(OtpChallenge.client_ip == client_ip),
            now - timedelta(hours=1),
            self.policy.sends_per_ip_hour,
            timedelta(hours=1),
            "Too many codes requested from your network: try again later.",
        )

    @staticmethod
    def _check_quota(sent, since, limit: int, window: timedelta, message: str) -> None:
        times = db.session.scalars(
            sent.where(OtpChallenge.created_at > since).order_by(OtpChallenge.created_at)
        ).all()
        if len(times) >= limit:
            oldest_counted = times[len(times) - limit]
            raise SendRefused(message, retry_after=_seconds(oldest_counted + window - clock.now()))

    def _end_live(self, user: User, purpose: OtpPurpose, *, reason: str) -> list[OtpChallenge]:
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
        return list(live)

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
        since = clock.now() - self.policy.account_window
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
            return Verification(False, "locked")
        challenge = self.live_challenge(user, purpose)
        if challenge is None or (order_id is not None and challenge.order_id != order_id):
            return Verification(False, "no_code")
        now = clock.now()
        if now >= challenge.expires_at:
            self._end(challenge, "expired")
            return Verification(False, "expired", challenge=challenge)
        if not hmac.compare_digest(challenge.binding, binding):
            self._end(challenge, "binding_changed")
            audit.record(
                audit.Event.CODE_INVALIDATED,
                user_id=user.id,
                ip=client_ip,
                purpose=str(purpose),
                reason="changed after the code was sent",
            )
            return Verification(False, "mismatch", challenge=challenge)
        code = submitted.replace(" ", "")[:64]
        if self._code_format.fullmatch(code) and hmac.compare_digest(
            challenge.code_hmac, self._digest(challenge, code)
        ):
            if self._consume(challenge, now):
                audit.record(
                    audit.Event.CODE_VERIFIED, user_id=user.id, ip=client_ip, purpose=str(purpose)
                )
                return Verification(True, "verified", challenge=challenge)
            return Verification(False, "no_code")
        return self._fail(user, challenge, client_ip)

    def _consume(self, challenge: OtpChallenge, now) -> bool:
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
            return Verification(False, "locked", challenge=challenge)
        left = self.policy.max_attempts - challenge.failed_attempts
        if left <= 0:
            self._end(challenge, "too_many_attempts")
            return Verification(False, "too_many_attempts", challenge=challenge)
        return Verification(False, "wrong", attempts_left=left, challenge=challenge)

    @staticmethod
    def _end(challenge: OtpChallenge, reason: str) -> None:
        if challenge.ended_at is None and challenge.consumed_at is None:
            challenge.ended_at = clock.now()
            challenge.end_reason = reason


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))
