"""Who may be sent a code, and when (SPEC section 5): one atomic check per number.

A send first locks its account, its number and its client address (`shop.locks`, in one
order so that two sends never wait on each other in a cycle), then counts what was
sent before and decides, then the caller inserts the code, all in one transaction. Twenty
parallel sends to one number are therefore decided one after the other, each seeing the
codes of those before it: never past a cap, never two live codes.

A code asked for inside the 30-second cool-down of its number is not refused when it comes
from a checkout or a sign-in: it is queued to go out when the cool-down ends. Only an
explicit resend inside the cool-down is refused ("wait n seconds").
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select

from shop import locks
from shop.accounts.phone import phone_country
from shop.extensions import db
from shop.models import OtpChallenge, SendRefusal
from shop.otp.policy import OtpPolicy


class Refusal(StrEnum):
    """Why a code was not sent; each is recorded (`SendRefusal`) and shown to the owner."""

    STEP_UP_LOCKED = "step_up_locked"
    NUMBER_NOT_VERIFIED = "number_not_verified"
    INVALID_NUMBER = "invalid_number"
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    COOLDOWN = "cooldown"
    NUMBER_10_MIN = "number_10_min"
    NUMBER_DAY = "number_day"
    IP_NUMBERS = "ip_numbers"
    IP_CODES = "ip_codes"
    NO_TRIES_LEFT = "no_tries_left"
    RESET_LOCKED = "reset_locked"


MESSAGES = {
    Refusal.STEP_UP_LOCKED: "Too many wrong codes today: SMS verification is locked on this "
    "account.",
    Refusal.NUMBER_NOT_VERIFIED: "Confirm your phone number first: codes go only to a "
    "verified number.",
    Refusal.INVALID_NUMBER: "That number cannot receive our SMS.",
    Refusal.COUNTRY_NOT_ALLOWED: "We cannot send SMS to numbers in that country.",
    Refusal.COOLDOWN: "A code was sent a moment ago: wait a few seconds before asking again.",
    Refusal.NUMBER_10_MIN: "Too many codes sent to this number: try again in a few minutes.",
    Refusal.NUMBER_DAY: "Too many codes sent to this number today.",
    Refusal.IP_NUMBERS: "Codes were sent to too many numbers from your network: try again later.",
    Refusal.IP_CODES: "Too many codes requested from your network: try again later.",
    Refusal.NO_TRIES_LEFT: "Too many wrong codes for this: a new code would not help. Start again.",
    Refusal.RESET_LOCKED: "Too many wrong codes today: password reset by SMS is locked on this "
    "account.",
}


def owner_labels(policy: OtpPolicy) -> Callable[[str], str]:
    """What each refusal means, in the owner's words and with the configured numbers: worded
    once for a page that names a refusal on every row."""
    labels = {
        Refusal.STEP_UP_LOCKED: f"account locked after {policy.max_account_failures} wrong "
        "codes in 24 hours",
        Refusal.NUMBER_NOT_VERIFIED: "number not verified",
        Refusal.INVALID_NUMBER: "not a number that can receive SMS",
        Refusal.COUNTRY_NOT_ALLOWED: "country not allowed",
        Refusal.COOLDOWN: f"asked again within {policy.resend_cooldown.seconds} s",
        Refusal.NUMBER_10_MIN: f"more than {policy.sends_per_number_10_min} codes to one number "
        "in 10 minutes",
        Refusal.NUMBER_DAY: f"more than {policy.sends_per_number_day} codes to one number in a day",
        Refusal.IP_NUMBERS: f"more than {policy.numbers_per_ip_hour} numbers from one address "
        "in an hour",
        Refusal.IP_CODES: f"more than {policy.sends_per_ip_hour} codes from one address in an hour",
        Refusal.NO_TRIES_LEFT: f"all {policy.max_attempts} tries used",
        Refusal.RESET_LOCKED: f"password reset locked after {policy.max_account_failures} wrong "
        "reset codes in 24 hours",
    }

    def label(reason: str) -> str:
        # A reason no longer known (a row from an older version) is shown as stored.
        return labels.get(reason) or reason.replace("_", " ")

    return label


class SendRefused(Exception):
    """No code was sent. `message` is safe to show; `retry_after` is in seconds, if known."""

    def __init__(
        self,
        reason: Refusal,
        *,
        phone: str,
        client_ip: str,
        purpose: str,
        user_id: int | None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> None:
        self.reason = reason
        self.message = message or MESSAGES[reason]
        super().__init__(self.message)
        self.phone = phone
        self.client_ip = client_ip
        self.purpose = purpose
        self.user_id = user_id
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendRequest:
    """One code about to be sent: to whom, from where, for what."""

    phone: str
    client_ip: str
    purpose: str
    user_id: int
    resend: bool = False
    by_owner: bool = False  # asked for by an owner's review, not by the client at `client_ip`

    def refuse(self, reason: Refusal, retry_after: int | None = None, **extra) -> SendRefused:
        return SendRefused(
            reason,
            phone=self.phone,
            client_ip=self.client_ip,
            purpose=self.purpose,
            user_id=self.user_id,
            retry_after=retry_after,
            **extra,
        )


def lock(request: SendRequest) -> None:
    """Lock the account, the number and the address until the transaction ends."""
    locks.hold(locks.account(request.user_id), f"ip:{request.client_ip}", f"phone:{request.phone}")


def send_time(policy: OtpPolicy, request: SendRequest, now: datetime) -> datetime:
    """When the code may go out (now, or at the end of the cool-down), or raise SendRefused.

    The caller holds the locks of `lock(request)`.
    """
    to_number = select(OtpChallenge.created_at).where(OtpChallenge.phone == request.phone)
    _cap(
        request,
        to_number,
        now,
        timedelta(minutes=10),
        policy.sends_per_number_10_min,
        Refusal.NUMBER_10_MIN,
    )
    _cap(
        request, to_number, now, timedelta(days=1), policy.sends_per_number_day, Refusal.NUMBER_DAY
    )
    if not request.by_owner:
        _address_caps(policy, request, now)
    last_send = db.session.scalar(
        select(func.max(OtpChallenge.send_at)).where(OtpChallenge.phone == request.phone)
    )
    if last_send is None or now >= last_send + policy.resend_cooldown:
        return now
    if request.resend:
        raise request.refuse(
            Refusal.COOLDOWN, retry_after=seconds(last_send + policy.resend_cooldown - now)
        )
    return last_send + policy.resend_cooldown


def _address_caps(policy: OtpPolicy, request: SendRequest, now: datetime) -> None:
    """One client address: at most so many numbers, and so many codes, per hour."""
    hour_ago = now - timedelta(hours=1)
    from_ip = OtpChallenge.client_ip == request.client_ip
    numbers = set(
        db.session.scalars(
            select(OtpChallenge.phone).distinct().where(from_ip, OtpChallenge.created_at > hour_ago)
        )
    )
    if request.phone not in numbers and len(numbers) >= policy.numbers_per_ip_hour:
        raise request.refuse(Refusal.IP_NUMBERS, retry_after=3600)
    _cap(
        request,
        select(OtpChallenge.created_at).where(from_ip),
        now,
        timedelta(hours=1),
        policy.sends_per_ip_hour,
        Refusal.IP_CODES,
    )


def _cap(request: SendRequest, sent, now: datetime, window: timedelta, limit: int, reason) -> None:
    times = db.session.scalars(
        sent.where(OtpChallenge.created_at > now - window).order_by(OtpChallenge.created_at)
    ).all()
    if len(times) >= limit:
        oldest_counted = times[len(times) - limit]
        raise request.refuse(reason, retry_after=seconds(oldest_counted + window - now))


def record(refused: SendRefused) -> SendRefusal:
    """Add the refusal to the current transaction: reason, number, country, address. No code."""
    row = SendRefusal(
        reason=refused.reason,
        purpose=refused.purpose,
        phone=refused.phone[:32],
        country=phone_country(refused.phone),
        client_ip=refused.client_ip[:45],
        user_id=refused.user_id,
    )
    db.session.add(row)
    return row


def seconds(delta: timedelta) -> int:
    """A wait in whole seconds, rounded up, at least 1."""
    return max(1, int(delta.total_seconds() + 0.999))
