"""The delivery process: claims due SMS rows atomically, sends them, records what happened.

Any number of these may run at once, on any machines. A claim is one UPDATE that takes a
batch of due rows and stamps them with this round's claim id and a lease (on PostgreSQL the
rows are picked with FOR UPDATE SKIP LOCKED, so workers never wait on each other). A row whose
lease runs out, because its process died mid-send, is claimed again: at most one duplicate.
"""

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from shop import clock
from shop.extensions import db
from shop.models import ConsoleMessage, SmsMessage, SmsStatus
from shop.sms.senders import SendFailure, SmsSender

log = logging.getLogger(__name__)
_jitter = secrets.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter: about 2, 4, 8 ... s, never over `cap`."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, attempt: int) -> timedelta:
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * _jitter.random()


class DeliveryWorker:
    """Sends due messages with one sender; one instance per thread or process."""

    def __init__(
        self,
        sender: SmsSender,
        *,
        name: str | None = None,
        batch_size: int = 10,
        lease: timedelta = timedelta(seconds=60),
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.sender = sender
        self.name = name or f"worker-{secrets.token_hex(4)}"
        self.batch_size = batch_size
        self.lease = lease
        self.retry = retry

    def run_once(self) -> int:
        """Sweep, claim one batch and send it; return how many messages were handled."""
        self.sweep()
        claimed = self.claim()
        for message in claimed:
            self.deliver(message)
        return len(claimed)

    def run(self, stop: threading.Event, idle_sleep: float = 0.1) -> None:
        """Deliver until `stop` is set, pausing `idle_sleep` seconds when nothing is due."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:  # a bad round must not end the process; the next one retries
                log.exception("SMS delivery round failed")
                db.session.rollback()
                handled = 0
            finally:
                db.session.remove()
            if not handled:
                stop.wait(idle_sleep)

    def sweep(self) -> None:
        """Codes that expired while waiting are dropped, and no copy keeps them readable."""
        now = clock.now()
        db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.status == SmsStatus.QUEUED, SmsMessage.expires_at <= now)
            .values(status=SmsStatus.DROPPED, body=SmsMessage.redacted_body)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(ConsoleMessage)
            .where(
                ConsoleMessage.expires_at <= now,
                ConsoleMessage.redacted_body.is_not(None),
                ConsoleMessage.body != ConsoleMessage.redacted_body,
            )
            .values(body=ConsoleMessage.redacted_body)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    def claim(self) -> list[SmsMessage]:
        now = clock.now()
        claim_id = f"{self.name}:{secrets.token_hex(6)}"
        due = (
            select(SmsMessage.id)
            .where(
                or_(
                    and_(SmsMessage.status == SmsStatus.QUEUED, SmsMessage.next_attempt_at <= now),
                    and_(SmsMessage.status == SmsStatus.SENDING, SmsMessage.lease_expires_at < now),
                )
            )
            .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(due.scalar_subquery()))
            .values(
                status=SmsStatus.SENDING,
                claimed_by=claim_id,
                lease_expires_at=now + self.lease,
                attempts=SmsMessage.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return list(
            db.session.scalars(
                select(SmsMessage).where(SmsMessage.claimed_by == claim_id).order_by(SmsMessage.id)
            )
        )

    def deliver(self, message: SmsMessage) -> None:
        if message.expires_at is not None and clock.now() >= message.expires_at:
            self._finish(
                message, status=SmsStatus.DROPPED, last_error="code expired before sending"
            )
            return
        try:
            accepted = self.sender.send(message)
        except SendFailure as failure:
            self._failed(message, failure)
        except Exception as error:  # a bug or an unexpected SDK error: retry, never lose it
            log.exception("SMS %s: unexpected error from the sender", message.id)
            self._failed(message, SendFailure(type(error).__name__, retriable=True))
        else:
            self._finish(
                message,
                status=SmsStatus.SENT,
                provider_message_id=accepted.provider_message_id,
                provider_price=accepted.price,
                sent_at=clock.now(),
                last_error=None,
            )

    def _failed(self, message: SmsMessage, failure: SendFailure) -> None:
        reason = f"{failure.reason}"[:500]
        if failure.retriable and message.attempts < self.retry.max_attempts:
            self._finish(
                message,
                status=SmsStatus.QUEUED,
                next_attempt_at=clock.now() + self.retry.delay(message.attempts),
                last_error=reason,
                redact=False,
            )
        else:
            self._finish(message, status=SmsStatus.FAILED, last_error=reason)

    def _finish(self, message: SmsMessage, *, redact: bool = True, **values) -> None:
        """Record the outcome, only if this round still holds the claim."""
        values |= {"claimed_by": None, "lease_expires_at": None}
        if redact and message.redacted_body is not None:
            values["body"] = message.redacted_body
        db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message.id, SmsMessage.claimed_by == message.claimed_by)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def start_in_thread(app, make_sender: Callable[[], SmsSender]) -> threading.Event:
    """Run a delivery loop beside a development server; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        with app.app_context():
            DeliveryWorker(make_sender(), name="dev-server").run(stop)

    threading.Thread(target=loop, name="sms-delivery", daemon=True).start()
    return stop
