"""What one send attempt becomes on its row: sent (keeping only what the columns can hold of
the provider's answer), queued again after a capped, jittered backoff, failed for good, or
dropped because its code expired first.
"""

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shop import clock
from shop.models import OrderEventKind, SmsMessage, SmsStatus
from shop.sms.senders import Accepted, SendFailure

log = logging.getLogger(__name__)
_jitter = secrets.SystemRandom()

# Column widths in sms_messages: a provider's odd answer must not make the outcome unrecordable.
_PROVIDER_ID_LENGTH = 64
# A price is kept only if it reads as a decimal number that fits the column: the owner's
# spend figures add prices up in the database, which must never meet anything else.
_PRICE = re.compile(r"[0-9]{1,7}(\.[0-9]{1,8})?")
_ERROR_LENGTH = 500
# 2**32 base delays is beyond any sensible cap; it also keeps timedelta from overflowing.
_MAX_EXPONENT = 32


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter: about 2, 4, 8 ... s, never over `cap`."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1 for the first): a random
        time between half the ceiling and the ceiling, min(cap, base * 2**(attempt - 1))."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        ceiling = min(self.cap, self.base * 2**exponent)
        return ceiling / 2 + ceiling / 2 * _jitter.random()


@dataclass(frozen=True)
class Outcome:
    """The values to record on a claimed message's row, and the event for its order's
    timeline. `redact`: a code's text gives way to its masked copy (not while it may still
    be sent again)."""

    values: dict[str, Any]
    event: OrderEventKind | None = None
    redact: bool = True
    facts: dict[str, str] = field(default_factory=dict)  # more for the timeline's line


def sent(accepted: Accepted) -> Outcome:
    return Outcome(
        {
            "status": SmsStatus.SENT,
            "provider_message_id": _clip(accepted.provider_message_id, _PROVIDER_ID_LENGTH),
            "provider_price": provider_price(accepted.price),
            "sent_at": clock.now(),
            "last_error": None,
        },
        OrderEventKind.SMS_SENT,
    )


def failed(message: SmsMessage, failure: SendFailure, retry: RetryPolicy) -> Outcome:
    """Queued again after the backoff while the failure may pass and attempts are left;
    else failed for good."""
    reason = f"{failure.reason}"[:_ERROR_LENGTH]
    if failure.retriable and message.attempts < retry.max_attempts:
        next_attempt_at = clock.now() + retry.delay(message.attempts)
        return Outcome(
            {"status": SmsStatus.QUEUED, "next_attempt_at": next_attempt_at, "last_error": reason},
            redact=False,
        )
    return Outcome({"status": SmsStatus.FAILED, "last_error": reason}, OrderEventKind.SMS_FAILED)


EXPIRED = Outcome(
    {"status": SmsStatus.DROPPED, "last_error": "code expired before sending"},
    OrderEventKind.SMS_DROPPED,
)
# Its code was used, replaced or ended (too many wrong tries...) while it waited to go out.
CODE_DEAD = Outcome(
    {"status": SmsStatus.DROPPED, "last_error": "code no longer valid before sending"},
    OrderEventKind.SMS_DROPPED,
    facts={"reason": "code_dead"},
)


def provider_price(value: str | None) -> str | None:
    """The provider's price as kept: a decimal number that fits the column, else None."""
    if value is None:
        return None
    if not _PRICE.fullmatch(value.strip()):
        log.warning("The provider gave a price that is not a number; not kept: %r", value[:40])
        return None
    return value.strip()


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None
