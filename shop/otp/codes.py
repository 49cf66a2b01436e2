"""One-time codes: issue, verify, consume (SPEC section 5).

A code is 6 (or 8) digits from `secrets`, sent by SMS through the outbox and stored only as
a keyed HMAC over the code and everything it is bound to (user, purpose, binding). The
callers are the use cases, which own the transaction: a code is sent only if their
transaction commits, and consumed in the same transaction as the change it authorises.

The challenge rows themselves (the live one, ending them, a code's status) are
`shop.otp.challenges`; the account's 24-hour count of wrong answers is `shop.otp.lockout`.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import update

from shop import accounts, audit, clock, locks, settings
from shop.accounts.phone import phone_country
from shop.extensions import db
from shop.models import OtpChallenge, OtpPurpose, SmsKind, User
from shop.otp import challenges, limits
from shop.otp.limits import Refusal, SendRefused, SendRequest
from shop.otp.lockout import Lockout
from shop.otp.outcomes import Check, CodeSend, Sent, Verification
from shop.otp.policy import OtpPolicy
from shop.sms import queue_sms, sealing

SMS_KIND = {
    OtpPurpose.LOGIN: SmsKind.OTP_LOGIN,
    OtpPurpose.PHONE: SmsKind.OTP_PHONE,
    OtpPurpose.ORDER: SmsKind.OTP_ORDER,
    OtpPurpose.PASSWORD: SmsKind.OTP_PASSWORD,
    OtpPurpose.RESET: SmsKind.OTP_RESET,
    OtpPurpose.SECURITY: SmsKind.OTP_SECURITY,
}


def binding_for(*parts: object) -> str:
    """A stable hash of what a code authorises (order ref, amount, items, address, number...)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()


def _locked(purpose: str) -> Refusal:
    """Why no code may go out to a locked account: its step-up, or (a reset) its reset."""
    return Refusal.RESET_LOCKED if purpose == OtpPurpose.RESET else Refusal.STEP_UP_LOCKED


def service() -> "Otp":
    """The app's OTP service (its policy and key), made by `create_app`."""
    return current_app.extensions["otp"]


class Otp:
    """The OTP policy of one app: its numbers, its HMAC key and the account lockout they make.
    The countries it may text are the owner's setting (`shop.settings.allowed_countries`),
    read at each send."""

    def __init__(self, policy: OtpPolicy, key: bytes) -> None:
        self.policy = policy
        self.lockout = Lockout(policy)
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
        if self.lockout.is_locked(user, purpose):
            raise request.refuse(_locked(purpose))
        # A resend never resets a count: the new code takes over the wrong tries of the last
        # code for the same thing, live or dead.
        carried = challenges.tries_used(user, purpose, binding)
        if carried >= self.policy.max_attempts:
            raise request.refuse(Refusal.NO_TRIES_LEFT)
        send_at = limits.send_time(self.policy, request, now)
        challenges.end_live(user, purpose, reason="replaced")
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
            redacted_body=text(sealing.MASK),
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
            if self.lockout.is_locked(user, purpose):
                raise request.refuse(_locked(purpose))
            if challenges.tries_used(user, purpose, binding) >= self.policy.max_attempts:
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
        With `order_id`, only a code sent for that order is considered. The account's lock
        is taken first: its count of wrong answers is read and added to one at a time.
        """
        locks.hold_account(user.id)
        if self.lockout.is_locked(user, purpose):
            return Verification(Check.LOCKED)
        challenge = challenges.live_challenge(user, purpose)
        if challenge is None or (order_id is not None and challenge.order_id != order_id):
            return Verification(Check.NO_CODE)
        now = clock.now()
        if now >= challenge.expires_at:
            challenges.end(challenge, "expired")
            return Verification(Check.EXPIRED, challenge=challenge)
        if not hmac.compare_digest(challenge.binding, binding):
            challenges.end(challenge, "binding_changed")
            audit.record(
                audit.Event.CODE_INVALIDATED,
                user_id=user.id,
                ip=client_ip,
                purpose=str(purpose),
                reason="changed after the code was sent",
            )
            return Verification(Check.MISMATCH, challenge=challenge)
        # Spaces around the code are trimmed (a paste brings them); inside, it is not a code.
        code = submitted.strip()[:64]
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
        locked = self.lockout.count_failure(
            user, "sms", client_ip=client_ip, purpose=challenge.purpose, challenge_id=challenge.id
        )
        db.session.refresh(challenge)
        if locked:
            challenges.end(challenge, "account_locked")
            return Verification(Check.LOCKED, challenge=challenge)
        left = self.policy.max_attempts - challenge.failed_attempts
        if left <= 0:
            challenges.end(challenge, "too_many_attempts")
            return Verification(Check.TOO_MANY_ATTEMPTS, challenge=challenge)
        return Verification(Check.WRONG, tries_left=left, challenge=challenge)
