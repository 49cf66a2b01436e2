"""The delivery process: claims due SMS rows atomically, sends them, records what happened.

One `DeliveryWorker` per thread or process, and any number of them on any machines: the
claims and their leases are `shop.sms.claims`, what a provider's answer becomes (and when a
failed send is tried again) is `shop.sms.attempts`.
"""

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from shop import clock
from shop.extensions import db
from shop.models import SmsMessage
from shop.sms import attempts, claims
from shop.sms.attempts import RetryPolicy
from shop.sms.senders import SendFailure, SmsSender

log = logging.getLogger(__name__)
RETRY = RetryPolicy()  # 8 attempts, about 2 s doubling up to 5 minutes apart


class DeliveryWorker:
    """Sends due messages with one sender; one instance per thread or process."""

    def __init__(
        self,
        sender: SmsSender,
        *,
        name: str | None = None,
        batch_size: int = 10,
        lease: timedelta = timedelta(seconds=60),
        retry: RetryPolicy = RETRY,
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
        claims.sweep()
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

    def claim(self) -> list[SmsMessage]:
        """Take up to `batch_size` due messages under this worker's lease (detached
        snapshots, see `shop.sms.claims`)."""
        return claims.claim(self.name, self.batch_size, self.lease)

    def deliver(self, message: SmsMessage) -> None:
        """Send one claimed message (from `claim()`) and record the outcome."""
        if message.expires_at is not None and clock.now() >= message.expires_at:
            claims.record(message, attempts.EXPIRED)
            return
        if claims.code_stopped_working(message):
            claims.record(message, attempts.CODE_DEAD)
            return
        if not claims.still_held(message, self.lease):
            log.warning(
                "SMS %s: its lease ran out before it was sent and another worker holds it now",
                message.id,
            )
            return
        try:
            accepted = self.sender.send(message)
        except SendFailure as failure:
            db.session.rollback()
            outcome = attempts.failed(message, failure, self.retry)
        except Exception as error:  # a bug or an unexpected SDK error: retry, never lose it
            log.exception("SMS %s: unexpected error from the sender", message.id)
            # The sender may have left the session in a failed transaction.
            db.session.rollback()
            failure = SendFailure(type(error).__name__, retriable=True)
            outcome = attempts.failed(message, failure, self.retry)
        else:
            outcome = attempts.sent(accepted)
        claims.record(message, outcome)


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
