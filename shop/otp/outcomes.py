"""What the OTP service answers: a check of a code, a request to send one, a code's status.

Typed outcomes of the OTP service (`shop.otp.codes`, `shop.otp.challenges`), shared by every
use case that asks for a code.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shop.models import OtpChallenge, OtpPurpose, SmsStatus
from shop.otp.limits import SendRefused
from shop.words import plural


class Check(StrEnum):
    """What a submitted code turned out to be."""

    VERIFIED = "verified"
    WRONG = "wrong"  # tries are left on this code
    EXPIRED = "expired"
    NO_CODE = "no_code"  # none is live: never sent, replaced, used or ended
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # this was the code's last try
    LOCKED = "locked"  # too many wrong codes on the account today
    MISMATCH = "mismatch"  # what it was bound to changed since it was sent
    NOT_ALLOWED = "not_allowed"  # this factor may not answer this step-up (not counted)


CHECK_MESSAGES = {
    Check.VERIFIED: "Code accepted.",
    Check.EXPIRED: "That code has expired. Ask for a new one.",
    Check.NO_CODE: "There is no code waiting. Ask for a new one.",
    Check.TOO_MANY_ATTEMPTS: "Too many wrong codes: this code no longer works.",
    Check.LOCKED: "Too many wrong codes today: SMS verification is locked on this account.",
    Check.MISMATCH: "The details changed after the code was sent, so it no longer works.",
    Check.NOT_ALLOWED: "That cannot confirm this. Use one of the ways offered.",
}


def attempts_left(count: int) -> str:
    """ "1 attempt left", "4 attempts left": the words every code page and message use."""
    return f"{plural(count, 'attempt')} left"


@dataclass(frozen=True)
class Verification:
    outcome: Check
    tries_left: int = 0
    challenge: OtpChallenge | None = None
    detail: str = ""  # the words of another factor's answer (an app code, a passkey)

    @property
    def ok(self) -> bool:
        return self.outcome == Check.VERIFIED

    @property
    def message(self) -> str:
        if self.detail:
            return self.detail
        if self.outcome == Check.WRONG:
            return f"That code is not right. {attempts_left(self.tries_left)}."
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
