"""The delivery process: claims due SMS rows atomically, sends them, records what happened.

Any number of these may run at once, on any machines. A claim picks a batch of due rows (on
PostgreSQL with FOR UPDATE SKIP LOCKED, so workers never wait on each other) and stamps them,
in one UPDATE, with this round's claim id and a lease. What the worker then holds
are snapshots of the claimed rows, detached from the session: a later commit never reloads
them with another worker's claim. Each outcome is recorded only while the claim still holds,
and a message whose lease is short is renewed (again only if still held) just before it is
sent, so a slow batch never sends a message that another worker has taken over. A row whose
lease runs out, because its process died mid-send, is claimed again: at most one duplicate.

An idle worker only reads: sweep and claim write only when there is something to change, so
polling never takes SQLite's write lock away from the web requests.
"""

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, any_, case, func, insert, literal, or_, select, update

from shop import clock
from shop.extensions import db
from shop.models import ConsoleMessage, OrderEvent, OrderEventKind, SmsMessage, SmsStatus
from shop.models.sms import in_outbox, queued
from shop.sms.receipts import FINAL_RECEIPTS
from shop.sms.senders import SendFailure, SmsSender

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
        housekeeping: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.sender = sender
        self.name = name or f"worker-{secrets.token_hex(4)}"
        self.batch_size = batch_size
        self.lease = lease
        self.retry = retry
        # Other timed chores of the background process, run before each round (e.g.
        # expiring orders whose code lapsed).
        self.housekeeping = tuple(housekeeping)

    def run_once(self) -> int:
        """Sweep, claim one batch and send it; return how many messages were handled."""
        for chore in self.housekeeping:
            chore()
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
        expired = and_(queued(), SmsMessage.expires_at <= now)
        if _any(SmsMessage.id, expired):
            _note_dropped_on_timelines(expired, now)
            db.session.execute(
                update(SmsMessage)
                .where(expired)
                # A code queued without a masked copy keeps its (dead) text rather than
                # failing the NOT NULL body, which would stop every delivery round.
                .values(
                    status=SmsStatus.DROPPED,
                    body=func.coalesce(SmsMessage.redacted_body, SmsMessage.body),
                )
                .execution_options(synchronize_session=False)
            )
        readable = and_(
            ConsoleMessage.expires_at <= now,
            ConsoleMessage.redacted_body.is_not(None),
            ConsoleMessage.body != ConsoleMessage.redacted_body,
        )
        if _any(ConsoleMessage.id, readable):
            db.session.execute(
                update(ConsoleMessage)
                .where(readable)
                .values(body=ConsoleMessage.redacted_body)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()

    def claim(self) -> list[SmsMessage]:
        """Take up to `batch_size` due messages; return detached snapshots of them."""
        now = clock.now()
        claim_id = f"{self.name}:{secrets.token_hex(6)}"
        # Queued and due, or claimed by a worker whose lease ran out. A message being sent
        # fell due before it was claimed, so both kinds are found on one range of
        # `ix_sms_messages_outbox` (next_attempt_at <= now), in the order they fell due,
        # whatever the size of the history.
        due = and_(
            in_outbox(),
            SmsMessage.next_attempt_at <= now,
            or_(SmsMessage.status == SmsStatus.QUEUED, SmsMessage.lease_expires_at < now),
        )
        if not _any(SmsMessage.id, due):
            db.session.commit()
            return []
        # One statement: on SQLite it runs under the write lock, so two workers never take
        # the same row; on PostgreSQL the rows are picked with FOR UPDATE SKIP LOCKED, and
        # `due` is checked again on each row as it is updated.
        batch = (
            select(SmsMessage.id)
            .where(due)
            .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        if db.session.get_bind().dialect.name == "postgresql":
            # PostgreSQL may run an IN (subquery) again for each row it updates, and each run
            # skips the rows just claimed and picks the next ones: the whole queue in one
            # claim. ARRAY(subquery) is run once.
            picked = SmsMessage.id == any_(func.array(batch))
        else:
            picked = SmsMessage.id.in_(batch)
        # RETURNING hands back the claimed rows: reading them again by claim id would scan
        # the whole table (claimed_by has no index, and needs none).
        claimed = db.session.scalars(
            update(SmsMessage)
            .where(picked, due)
            .values(
                status=SmsStatus.SENDING,
                claimed_by=claim_id,
                lease_expires_at=now + self.lease,
                attempts=SmsMessage.attempts + 1,
            )
            .returning(SmsMessage),
            execution_options={"synchronize_session": False, "populate_existing": True},
        ).all()
        # Snapshots: a commit while sending one message must not reload the next one, which
        # by then may hold another worker's claim.
        for message in claimed:
            db.session.expunge(message)
        db.session.commit()
        return sorted(claimed, key=lambda message: message.id)

    def deliver(self, message: SmsMessage) -> None:
        """Send one claimed message (from `claim()`) and record the outcome."""
        if message.expires_at is not None and clock.now() >= message.expires_at:
            self._finish(
                message,
                status=SmsStatus.DROPPED,
                last_error="code expired before sending",
                event=OrderEventKind.SMS_DROPPED,
            )
            return
        if not self._still_held(message):
            log.warning(
                "SMS %s: its lease ran out before it was sent and another worker holds it now",
                message.id,
            )
            return
        try:
            accepted = self.sender.send(message)
        except SendFailure as failure:
            db.session.rollback()
            self._failed(message, failure)
        except Exception as error:  # a bug or an unexpected SDK error: retry, never lose it
            log.exception("SMS %s: unexpected error from the sender", message.id)
            # The sender may have left the session in a failed transaction.
            db.session.rollback()
            self._failed(message, SendFailure(type(error).__name__, retriable=True))
        else:
            self._finish(
                message,
                status=SmsStatus.SENT,
                provider_message_id=_clip(accepted.provider_message_id, _PROVIDER_ID_LENGTH),
                provider_price=_price(accepted.price),
                sent_at=clock.now(),
                last_error=None,
                event=OrderEventKind.SMS_SENT,
            )

    def _still_held(self, message: SmsMessage) -> bool:
        """Whether this round still holds `message`, renewing a lease that is running short
        (a slow batch): the send that follows then ends before anyone else may claim it."""
        now = clock.now()
        held_until: datetime | None = message.lease_expires_at
        if held_until is not None and held_until - now >= self.lease / 2:
            return True  # nobody may claim it before then
        renewed = db.session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.id == message.id,
                SmsMessage.claimed_by == message.claimed_by,
                SmsMessage.status == SmsStatus.SENDING,
            )
            .values(lease_expires_at=now + self.lease)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if renewed.rowcount != 1:
            return False
        message.lease_expires_at = now + self.lease
        return True

    def _failed(self, message: SmsMessage, failure: SendFailure) -> None:
        reason = f"{failure.reason}"[:_ERROR_LENGTH]
        if failure.retriable and message.attempts < self.retry.max_attempts:
            self._finish(
                message,
                status=SmsStatus.QUEUED,
                next_attempt_at=clock.now() + self.retry.delay(message.attempts),
                last_error=reason,
                redact=False,
            )
        else:
            self._finish(
                message, status=SmsStatus.FAILED, last_error=reason, event=OrderEventKind.SMS_FAILED
            )

    def _finish(
        self,
        message: SmsMessage,
        *,
        redact: bool = True,
        event: OrderEventKind | None = None,
        **values,
    ) -> None:
        """Record the outcome, only if this round still holds the claim; a message about an
        order puts `event` on its timeline in the same transaction."""
        values |= {"claimed_by": None, "lease_expires_at": None}
        if values.get("status") == SmsStatus.SENT:
            # A delivery receipt can beat the provider's answer here: keep its final word.
            values["status"] = case(
                (SmsMessage.receipt_status.in_(list(FINAL_RECEIPTS)), SmsMessage.receipt_status),
                else_=SmsStatus.SENT.value,
            )
        if redact and message.redacted_body is not None:
            values["body"] = message.redacted_body
        result = db.session.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message.id, SmsMessage.claimed_by == message.claimed_by)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1 and event is not None and message.order_id is not None:
            error = values.get("last_error") if event != OrderEventKind.SMS_SENT else None
            db.session.add(OrderEvent.new(message.order_id, event, sms=message.kind, error=error))
        db.session.commit()
        if result.rowcount != 1:
            log.warning(
                "SMS %s: outcome %s not recorded: its lease ran out and another worker holds it",
                message.id,
                values.get("status"),
            )


def _note_dropped_on_timelines(expired, now: datetime) -> None:
    """The codes about to be dropped unsent, on their orders' timelines."""
    dropped = select(
        SmsMessage.order_id,
        literal(now, OrderEvent.at.type),
        literal(OrderEventKind.SMS_DROPPED.value),
        # The JSON of OrderEvent.new(..., sms=<kind>), built by the database.
        literal('{"sms": "') + SmsMessage.kind + literal('"}'),
    ).where(expired, SmsMessage.order_id.is_not(None))
    db.session.execute(
        insert(OrderEvent).from_select(["order_id", "at", "kind", "detail"], dropped)
    )


def _any(column, condition) -> bool:
    """Whether any row matches: a read, so that an idle worker never takes a write lock."""
    return db.session.scalar(select(column).where(condition).limit(1)) is not None


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


def _price(value: str | None) -> str | None:
    if value is None:
        return None
    if not _PRICE.fullmatch(value.strip()):
        log.warning("The provider gave a price that is not a number; not kept: %r", value[:40])
        return None
    return value.strip()


class Every:
    """A chore run at most once per `seconds` by this process, however often it is called:
    an idle delivery loop comes round ten times a second, too often for a sweep of the hour's
    figures. Thread-safe; the first call runs it."""

    def __init__(self, seconds: float, chore: Callable[[], object]) -> None:
        self.seconds = seconds
        self.chore = chore
        self._due = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> object:
        with self._lock:
            now = time.monotonic()
            if now < self._due:
                return None
            self._due = now + self.seconds
        return self.chore()


def start_in_thread(
    app, make_sender: Callable[[], SmsSender], housekeeping: Sequence[Callable[[], object]] = ()
) -> threading.Event:
    """Run a delivery loop beside a development server; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        with app.app_context():
            worker = DeliveryWorker(make_sender(), name="dev-server", housekeeping=housekeeping)
            worker.run(stop)

    threading.Thread(target=loop, name="sms-delivery", daemon=True).start()
    return stop
