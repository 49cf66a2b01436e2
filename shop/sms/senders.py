"""The provider seam: the SMS sender interface and the console sender (`backends` names them).

A sender hands one message to a provider and says what happened, in three outcomes:
accepted (a provider id), a retriable failure, or a permanent failure. The delivery
process decides about retries; a sender never retries on its own.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from sqlalchemy import select

from shop.extensions import db
from shop.models.sms import ConsoleMessage, SmsMessage


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str
    price: str | None = None


class SendFailure(Exception):
    """The provider did not take the message. `reason` is safe to show to the shop owner."""

    def __init__(self, reason: str, *, retriable: bool, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable
        self.code = code


class SmsSender(ABC):
    """Hands messages to one provider. One instance per delivery thread."""

    @abstractmethod
    def send(self, message: SmsMessage) -> Accepted:
        """Send `message` once; raise SendFailure if the provider did not accept it."""


class ConsoleSender(SmsSender):
    """Stores the message for the demo phone at /dev/phone instead of sending it."""

    def send(self, message: SmsMessage) -> Accepted:
        # Idempotent: a process killed after this commit sends the row again.
        if db.session.scalar(select(ConsoleMessage.id).where(ConsoleMessage.sms_id == message.id)):
            return Accepted(provider_message_id=f"console-{message.id}")
        db.session.add(
            ConsoleMessage(
                sms_id=message.id,
                to_number=message.to_number,
                body=message.body,
                redacted_body=message.redacted_body,
                expires_at=message.expires_at,
            )
        )
        db.session.commit()
        return Accepted(provider_message_id=f"console-{message.id}")
