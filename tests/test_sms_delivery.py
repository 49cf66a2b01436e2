"""The SMS delivery process end to end (SPEC sections 6 and 7, fault injection).

Real things at the boundary: a migrated SQLite file per test, the console sender, the real
Vonage SDK over TLS against the local stand-in (tests/fake_vonage), worker threads each with
an app context (so a session and a connection) of their own, and a real `flask sms worker`
process killed mid-send. Time is frozen through `shop.clock.now` wherever it matters.
"""

import contextlib
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from shop import alerts, clock
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import ConsoleMessage, Order, OrderStatus, SmsKind, SmsMessage, SmsStatus
from shop.orders import ShippingAddress, timeline
from shop.orders.checkout import start_checkout
from shop.orders.confirmation import ConfirmOutcome, confirm_order
from shop.orders.resend import ResendOutcome, resend_order_code
from shop.sms import claims, queue_sms
from shop.sms.attempts import RetryPolicy
from shop.sms.delivery import DeliveryWorker
from shop.sms.receipts import apply_receipt
from shop.sms.senders import Accepted, ConsoleSender, SendFailure, SmsSender
from shop.sms.vonage import VonageSender
from tests import ROOT, postgres
from tests.conftest import FrozenClock
from tests.factories import ADDRESS, fill_cart, last_code_sent_to, make_product, make_user, wrong
from tests.fake_vonage import (  # noqa: F401 (fixtures)
    closed_port,
    fake_vonage_fixture,
    httpserver_ssl_context,
    vonage_ca,
    vonage_ca_bundle,
)

PHONE = "+447700900123"
ALERT_TEXT = "Shop: order SH-0000TEST for €10.00 was placed. Not you? http://127.0.0.1:5000/x"
CODE = "482913"
CODE_TEXT = f"Shop: {CODE} is your code to sign in. Never share it.\n\n@127.0.0.1 #{CODE}"
MASKED_TEXT = CODE_TEXT.replace(CODE, "••••••")
CLIENT = Client("203.0.113.9", "device-1")

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def frozen(monkeypatch) -> FrozenClock:
    """The clock stopped at the real now (the fake provider's timings are real)."""
    frozen = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(clock, "now", frozen)
    return frozen


@pytest.fixture
def vonage(app, fake_vonage):
    """Makes Vonage senders pointed at the stand-in (settings may be overridden), one per
    worker, and closes them after the test. They open sealed bodies with the app's keys, as
    the delivery process's sender does."""
    made: list[VonageSender] = []

    def make(**overrides) -> VonageSender:
        sender = VonageSender.from_config({**app.config, **fake_vonage.config, **overrides})
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


def queue(body: str = ALERT_TEXT, kind: SmsKind = SmsKind.ALERT_ORDER_PLACED, **fields) -> int:
    """Queue one SMS and commit, as the event that causes it would; return its id."""
    message = queue_sms(PHONE, body, kind, **fields)
    db.session.flush()
    message_id = message.id
    db.session.commit()
    return message_id


def queue_code(expires_in: timedelta = timedelta(minutes=5)) -> int:
    return queue(
        CODE_TEXT,
        SmsKind.OTP_LOGIN,
        redacted_body=MASKED_TEXT,
        expires_at=clock.now() + expires_in,
    )


def sms(message_id: int) -> SmsMessage:
    db.session.expire_all()
    return db.session.get(SmsMessage, message_id)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def database_text(app) -> str:
    """Everything the database file holds, as SQL: what a copy of it would give away."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return "\n".join(connection.iterdump())


def run_in_threads(app, *targets: Callable[[], object], timeout: float = 60) -> list:
    """Run each target in a thread of its own with its own app context (so its own database
    session), all at once; return their results, or raise the first error."""
    results: list = [None] * len(targets)
    errors: list[BaseException] = []

    def run(index: int, target: Callable[[], object]) -> None:
        try:
            with app.app_context():
                results[index] = target()
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(index, target), name=f"test-worker-{index}")
        for index, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker thread is stuck"
    if errors:
        raise errors[0]
    return results


@contextlib.contextmanager
def polling(app, worker: DeliveryWorker, idle_sleep: float):
    """`worker.run()` in a thread of its own (own app context, own session) for the duration of
    the block; stopped, joined and checked on the way out."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                worker.run(stop, idle_sleep)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name=f"{worker.name}-thread")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker thread did not stop"
    if errors:
        raise errors[0]


def drain(worker: DeliveryWorker) -> int:
    """Run rounds until one finds nothing due; return how many messages were handled."""
    handled = 0
    while done := worker.run_once():
        handled += done
    return handled


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Killed(BaseException):
    """The process dies here: not an Exception, so no handler of the worker runs."""


class DiesAfterSending(SmsSender):
    """Hands the message to the provider, then the process is killed before it records it."""

    def __init__(self, inner: SmsSender) -> None:
        self.inner = inner

    def send(self, message: SmsMessage) -> Accepted:
        self.inner.send(message)
        raise Killed


# --- 1. console backend ------------------------------------------------------------------------


def test_console_backend_sends_and_keeps_no_readable_code(app, frozen):
    alert_id = queue()
    code_id = queue_code()
    worker = DeliveryWorker(ConsoleSender())

    assert worker.run_once() == 2

    alert = sms(alert_id)
    assert alert.status == SmsStatus.SENT
    assert alert.provider_message_id == f"console-{alert_id}"
    assert alert.sent_at == frozen.now
    assert alert.attempts == 1
    assert (alert.claimed_by, alert.lease_expires_at, alert.last_error) == (None, None, None)
    assert alert.body == ALERT_TEXT  # an alert carries no code: nothing to mask
    phone = {row.sms_id: row for row in db.session.scalars(select(ConsoleMessage))}
    assert set(phone) == {alert_id, code_id}
    assert (phone[alert_id].to_number, phone[alert_id].body) == (PHONE, ALERT_TEXT)

    # The outbox copy of the code is masked as soon as it is handed over...
    code = sms(code_id)
    assert code.status == SmsStatus.SENT
    assert code.provider_message_id == f"console-{code_id}"
    assert code.body == MASKED_TEXT
    assert CODE not in code.body
    # ...while the demo phone shows it until it expires,
    assert phone[code_id].body == CODE_TEXT
    frozen.advance(minutes=4, seconds=59)
    claims.sweep()
    db.session.expire_all()
    assert db.session.get(ConsoleMessage, phone[code_id].id).body == CODE_TEXT
    # ...after which the sweep masks that copy too: no copy of the database holds the code.
    frozen.advance(seconds=1)
    claims.sweep()
    db.session.expire_all()
    assert db.session.get(ConsoleMessage, phone[code_id].id).body == MASKED_TEXT
    assert CODE not in database_text(app)

    assert worker.run_once() == 0
    assert count(ConsoleMessage) == 2


# --- 2. nothing is sent for a transaction that does not commit -------------------------------


def test_nothing_is_sent_for_a_transaction_that_rolls_back(app, client, frozen, monkeypatch):
    user = make_user()
    fill_cart(user, (make_product(), 1))
    rows_before_the_crash = []
    real_order_placed = alerts.order_placed

    def crash_after_the_sms_row(user, order):
        assert real_order_placed(user, order)
        db.session.flush()  # the SMS row is written, in the still open transaction
        rows_before_the_crash.append(db.session.scalar(select(func.count(SmsMessage.id))))
        raise RuntimeError("the process fails before commit")

    monkeypatch.setattr(alerts, "order_placed", crash_after_the_sms_row)
    client.sign_in_as(user)
    with pytest.raises(RuntimeError, match="before commit"):
        client.post_form("/checkout", {**ADDRESS, "idempotency_key": "k" * 32})

    assert rows_before_the_crash == [1]
    assert count(SmsMessage) == 0
    assert count(Order) == 0
    assert run_in_threads(app, DeliveryWorker(ConsoleSender()).run_once) == [0]
    assert count(ConsoleMessage) == 0


def test_nothing_is_sent_before_commit(app, frozen):
    message = queue_sms(PHONE, ALERT_TEXT, SmsKind.ALERT_NEW_DEVICE)
    db.session.flush()  # in the database, but not committed
    message_id = message.id
    worker = DeliveryWorker(ConsoleSender())

    # A worker elsewhere finds nothing (and, reading only, does not wait on this transaction).
    assert run_in_threads(app, worker.run_once, timeout=10) == [0]
    assert count(ConsoleMessage) == 0

    db.session.commit()
    assert run_in_threads(app, worker.run_once) == [1]
    assert sms(message_id).status == SmsStatus.SENT
    assert count(ConsoleMessage) == 1


# --- 3. Vonage: success, retries with backoff, refusals ---------------------------------------


def test_vonage_success_records_the_message_id_and_price(app, frozen, fake_vonage, vonage):
    fake_vonage.accept(message_id="0A00000012345678", price="0.03330000")
    message_id = queue()

    assert DeliveryWorker(vonage()).run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.SENT
    assert message.provider_message_id == "0A00000012345678"
    assert message.provider_price == "0.03330000"
    assert message.sent_at == frozen.now
    assert (message.attempts, message.last_error, message.claimed_by) == (1, None, None)
    [form] = fake_vonage.requests
    assert form["client-ref"] == f"sms-{message_id}"
    assert form["to"] == PHONE.removeprefix("+")
    assert form["text"] == ALERT_TEXT


RETRIABLE = ["status 1", "status 5", "HTTP 503", "connection refused", "read timeout"]


def first_attempt_fails(case: str, fake_vonage, vonage) -> tuple[VonageSender, str, int]:
    """Arrange the failure; return the sender, the expected error and whether it reaches
    the stand-in."""
    if case == "status 1":
        fake_vonage.reject(1, "Throughput Rate Exceeded - please wait [ 10 ] and retry")
        return vonage(), "status 1: Throughput Rate Exceeded", 1
    if case == "status 5":
        fake_vonage.reject(5, "Internal Error")
        return vonage(), "status 5: Internal Error", 1
    if case == "HTTP 503":
        fake_vonage.http_error(503, "down for maintenance")
        return vonage(), "HTTP 503", 1
    if case == "connection refused":
        return vonage(VONAGE_REST_HOST=f"127.0.0.1:{closed_port()}"), "Could not reach Vonage", 0
    assert case == "read timeout"
    fake_vonage.slow(1.5)
    return vonage(VONAGE_TIMEOUT=1), "did not answer within 1 s", 1


@pytest.mark.parametrize("case", RETRIABLE)
def test_retriable_failure_waits_with_backoff_then_sends(app, frozen, fake_vonage, vonage, case):
    sender, error, reached = first_attempt_fails(case, fake_vonage, vonage)
    message_id = queue()
    worker = DeliveryWorker(sender)

    assert worker.run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.QUEUED
    assert message.attempts == 1
    assert error in message.last_error
    assert (message.claimed_by, message.provider_message_id, message.sent_at) == (None,) * 3
    wait = message.next_attempt_at - frozen.now
    assert timedelta(seconds=1) <= wait <= timedelta(seconds=2)  # the first backoff step
    assert fake_vonage.refs() == [f"sms-{message_id}"] * reached

    # Not due yet: nothing is sent, even a moment before the time.
    frozen.now = message.next_attempt_at - timedelta(milliseconds=1)
    assert worker.run_once() == 0
    assert sms(message_id).status == SmsStatus.QUEUED

    # Due: it goes out (through a sender that reaches the recovered provider).
    frozen.now = message.next_attempt_at
    assert DeliveryWorker(vonage()).run_once() == 1
    message = sms(message_id)
    assert message.status == SmsStatus.SENT
    assert message.attempts == 2
    assert message.last_error is None
    assert message.provider_message_id
    assert fake_vonage.refs() == [f"sms-{message_id}"] * (reached + 1)


@pytest.mark.parametrize(
    ("status", "error_text"), [(4, "Bad Credentials"), (9, "Partner quota violation")]
)
def test_refusal_fails_at_once(app, frozen, fake_vonage, vonage, status, error_text):
    fake_vonage.reject(status, error_text)
    message_id = queue_code()
    worker = DeliveryWorker(vonage())

    assert worker.run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.FAILED
    assert f"status {status}: {error_text}" in message.last_error
    assert message.attempts == 1
    assert message.body == MASKED_TEXT  # given up: the code is masked all the same
    frozen.advance(hours=1)
    assert worker.run_once() == 0
    assert len(fake_vonage.requests) == 1


def test_gives_up_after_eight_attempts_with_growing_delays(app, frozen, fake_vonage, vonage):
    policy = RetryPolicy()
    for _ in range(policy.max_attempts):
        fake_vonage.reject(5, "Internal Error")
    message_id = queue()
    worker = DeliveryWorker(vonage(), retry=policy)

    waits = []
    for attempt in range(1, policy.max_attempts + 1):
        assert worker.run_once() == 1
        message = sms(message_id)
        assert message.attempts == attempt
        if attempt < policy.max_attempts:
            assert message.status == SmsStatus.QUEUED
            ceiling = min(policy.cap, policy.base * 2 ** (attempt - 1))
            waits.append(message.next_attempt_at - frozen.now)
            assert ceiling / 2 <= waits[-1] <= ceiling
            assert worker.run_once() == 0  # not before its time
            frozen.now = message.next_attempt_at

    assert message.status == SmsStatus.FAILED
    assert message.attempts == 8
    assert "status 5: Internal Error" in message.last_error
    assert waits[-1] > waits[0] * 16
    assert fake_vonage.refs() == [f"sms-{message_id}"] * 8
    frozen.advance(hours=1)
    assert worker.run_once() == 0
    assert len(fake_vonage.requests) == 8


def test_backoff_is_exponential_jittered_and_capped():
    policy = RetryPolicy()
    for attempt in range(1, 11):
        ceiling = min(policy.cap, policy.base * 2 ** (attempt - 1))
        samples = [policy.delay(attempt) for _ in range(2000)]
        assert all(ceiling / 2 <= sample <= ceiling for sample in samples), attempt
        # Jitter spreads retries over the whole range, so that workers do not retry in step.
        assert min(samples) < ceiling * 0.55
        assert max(samples) > ceiling * 0.95
        assert len(set(samples)) > 1900
    assert min(policy.base * 2 ** (9 - 1), policy.cap) == policy.cap  # attempt 9 is capped
    assert policy.delay(1_000) <= policy.cap  # any attempt number: capped, no overflow
    small = RetryPolicy(base=timedelta(milliseconds=500), cap=timedelta(seconds=3))
    assert all(timedelta(seconds=1.5) <= small.delay(7) <= timedelta(seconds=3) for _ in range(50))


# --- 4. codes are never sent late -------------------------------------------------------------


def test_code_expiring_while_the_provider_is_down_is_dropped(app, frozen, fake_vonage, vonage):
    fake_vonage.down()  # HTTP 503 to everything
    message_id = queue_code()
    expires_at = sms(message_id).expires_at
    worker = DeliveryWorker(vonage())
    for _ in range(2):
        assert worker.run_once() == 1
        assert sms(message_id).status == SmsStatus.QUEUED
        frozen.now = sms(message_id).next_attempt_at
    assert len(fake_vonage.requests) == 2

    # The code expires while it waits; the provider is back, too late.
    frozen.now = expires_at
    fake_vonage.up()
    assert worker.run_once() == 0

    message = sms(message_id)
    assert message.status == SmsStatus.DROPPED
    assert message.body == MASKED_TEXT
    assert "HTTP 503" in message.last_error  # why it could not go in time
    assert CODE not in database_text(app)
    frozen.advance(hours=1)
    assert worker.run_once() == 0
    assert len(fake_vonage.requests) == 2  # never sent late


def test_code_expired_before_its_first_attempt_is_dropped(app, frozen, fake_vonage, vonage):
    message_id = queue_code()
    frozen.advance(minutes=5)

    assert DeliveryWorker(vonage()).run_once() == 0

    message = sms(message_id)
    assert message.status == SmsStatus.DROPPED
    assert message.body == MASKED_TEXT
    assert message.attempts == 0
    assert fake_vonage.requests == []


def test_code_past_expiry_at_claim_time_is_dropped(app, frozen, fake_vonage, vonage):
    message_id = queue_code()
    worker = DeliveryWorker(vonage())
    frozen.advance(minutes=6)

    [claimed] = worker.claim()  # claim alone (no sweep) takes it: deliver must not send it
    worker.deliver(claimed)

    message = sms(message_id)
    assert message.status == SmsStatus.DROPPED
    assert message.last_error == "code expired before sending"
    assert message.body == MASKED_TEXT
    assert message.claimed_by is None
    assert fake_vonage.requests == []


def test_code_without_a_masked_copy_does_not_stop_delivery(app, frozen):
    """A code queued without its masked text used to make every sweep fail (NOT NULL body),
    and with it every round: nothing else was ever sent again."""
    bare_code = queue(CODE_TEXT, SmsKind.OTP_LOGIN, expires_at=clock.now() + timedelta(minutes=5))
    frozen.advance(minutes=6)
    alert_id = queue()

    assert DeliveryWorker(ConsoleSender()).run_once() == 1

    assert sms(bare_code).status == SmsStatus.DROPPED
    assert sms(alert_id).status == SmsStatus.SENT


class TimesOutWhile(SmsSender):
    """The provider holds the request until the read times out; meanwhile `during()` happens
    (the shopper, who is not waiting on it, goes on)."""

    def __init__(self, during: Callable[[], object]) -> None:
        self.during = during

    def send(self, message: SmsMessage) -> Accepted:
        self.during()
        db.session.commit()
        raise SendFailure("Vonage did not answer within 10 s", retriable=True)


def order_with_a_code(shopper) -> tuple[Order, int]:
    """A checkout that asks for a code (30 € is over the default threshold); its code's SMS."""
    fill_cart(shopper, (make_product(price_minor=30_000, stock=5), 1))
    order = start_checkout(shopper, ShippingAddress(**ADDRESS), "k" * 32, CLIENT).order
    assert order.status == OrderStatus.PENDING_VERIFICATION
    code_sms = db.session.scalar(select(SmsMessage.id).where(SmsMessage.order_id == order.id))
    return order, code_sms


@pytest.mark.parametrize("meanwhile", ["replaced", "used", "expired"])
def test_a_code_that_stops_working_while_being_sent_is_not_tried_again(app, frozen, meanwhile):
    """A code whose send fails after its code was replaced by a new one, used (an earlier
    attempt had reached the phone after all) or expired is dropped, not queued again: the
    shopper would get a code that no longer works, maybe after the live one."""
    shopper = make_user()
    order, old_sms = order_with_a_code(shopper)

    def shopper_goes_on() -> None:
        if meanwhile == "replaced":
            frozen.advance(seconds=31)  # past the cool-down
            assert resend_order_code(shopper, order.ref, CLIENT).outcome == ResendOutcome.SENT
        elif meanwhile == "used":
            code = last_code_sent_to(shopper.phone)
            assert confirm_order(shopper, order.ref, code, CLIENT).outcome == ConfirmOutcome.PLACED
        else:
            frozen.advance(minutes=5)

    assert DeliveryWorker(TimesOutWhile(shopper_goes_on)).run_once() == 1

    message = sms(old_sms)
    assert message.status == SmsStatus.DROPPED
    assert message.body == message.redacted_body  # no copy keeps the code
    assert "did not answer within 10 s" in message.last_error
    assert message.claimed_by is None
    [dropped] = [entry for entry in timeline.for_shopper(order) if entry.kind == "sms_dropped"]
    assert dropped.text == (
        "The code was not sent: the code expired first."
        if meanwhile == "expired"
        else "The code was not tried again: the code was no longer valid."
    )
    # Later rounds send what is live (the new code, the order's alert), never the old code.
    frozen.advance(seconds=30)
    drain(DeliveryWorker(ConsoleSender()))
    assert old_sms not in db.session.scalars(select(ConsoleMessage.sms_id)).all()
    assert sms(old_sms).status == SmsStatus.DROPPED


@pytest.mark.parametrize("meanwhile", ["used", "out_of_tries"])
def test_a_code_waiting_for_another_try_is_not_sent_once_it_stopped_working(
    any_app, frozen, meanwhile
):
    """A code's SMS failed and waits for its next try; meanwhile the code was used (the
    first try had reached the phone after all) or died of five wrong tries. The next round
    drops it instead of sending a code that no longer works."""
    shopper = make_user()
    order, code_sms = order_with_a_code(shopper)
    assert DeliveryWorker(TimesOutWhile(lambda: None)).run_once() == 1
    assert sms(code_sms).status == SmsStatus.QUEUED  # another try after the backoff
    code = last_code_sent_to(shopper.phone)
    if meanwhile == "used":
        assert confirm_order(shopper, order.ref, code, CLIENT).outcome == ConfirmOutcome.PLACED
    else:
        for _ in range(5):
            confirm_order(shopper, order.ref, wrong(code), CLIENT)
    frozen.advance(minutes=1)  # past the backoff, inside the code's five minutes

    drain(DeliveryWorker(ConsoleSender()))

    message = sms(code_sms)
    assert message.status == SmsStatus.DROPPED
    assert message.body == message.redacted_body
    assert code_sms not in db.session.scalars(select(ConsoleMessage.sms_id)).all()
    [dropped] = [entry for entry in timeline.for_shopper(order) if entry.kind == "sms_dropped"]
    assert dropped.text == "The code was not sent: the code was no longer valid."


# --- 5. several workers at once -----------------------------------------------------------------


def test_two_workers_send_each_of_200_messages_exactly_once(app, frozen, fake_vonage, vonage):
    for n in range(200):
        queue_sms(PHONE, f"Shop: message {n}.", SmsKind.ALERT_NEW_DEVICE)
    db.session.commit()
    ids = set(db.session.scalars(select(SmsMessage.id)))
    start = threading.Barrier(2)

    def worker(name: str) -> Callable[[], int]:
        delivery = DeliveryWorker(vonage(), name=name, batch_size=5)  # its own sender

        def run() -> int:
            start.wait()
            return drain(delivery)

        return run

    handled = run_in_threads(app, worker("one"), worker("two"))

    per_message = Counter(fake_vonage.refs())
    assert set(per_message) == {f"sms-{message_id}" for message_id in ids}
    assert set(per_message.values()) == {1}
    assert sum(handled) == 200
    assert min(handled) > 0, f"one worker did everything: {handled}"
    statuses = db.session.execute(
        select(SmsMessage.status, func.count()).group_by(SmsMessage.status)
    ).all()
    assert dict(statuses) == {SmsStatus.SENT: 200}
    assert db.session.scalar(select(func.count()).where(SmsMessage.claimed_by.is_not(None))) == 0


# --- 6. a worker killed mid-send ------------------------------------------------------------


def test_worker_killed_between_send_and_record_resends_once(app, frozen, fake_vonage, vonage):
    message_id = queue()
    dying = DeliveryWorker(DiesAfterSending(vonage()), lease=timedelta(seconds=60))

    def run_and_die() -> str:
        try:
            dying.run_once()
        except Killed:
            return "killed"
        return "survived"

    assert run_in_threads(app, run_and_die) == ["killed"]
    message = sms(message_id)
    assert message.status == SmsStatus.SENDING
    assert fake_vonage.refs() == [f"sms-{message_id}"]

    # While the lease runs, the message may still be in its first worker's hands: untouched.
    other = DeliveryWorker(vonage())
    frozen.advance(seconds=59)
    assert other.run_once() == 0
    # Once it has run out, another worker takes the message over and sends it: once more.
    frozen.advance(seconds=2)
    assert other.run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.SENT
    assert message.attempts == 2
    frozen.advance(hours=1)
    assert other.run_once() == 0
    assert fake_vonage.refs() == [f"sms-{message_id}"] * 2  # at most one duplicate


def test_slow_batch_never_sends_what_another_worker_took_over(app, frozen, fake_vonage, vonage):
    """Each send of a batch of 3 takes 50 s, so the batch outlives its 60 s lease and another
    worker takes the third message over: the slow worker must not send it as well."""
    ids = [queue() for _ in range(3)]
    meanwhile = DeliveryWorker(vonage(), name="meanwhile")

    class Slow(SmsSender):
        def __init__(self) -> None:
            self.inner = vonage()
            self.sends = 0

        def send(self, message: SmsMessage) -> Accepted:
            accepted = self.inner.send(message)
            frozen.advance(seconds=50)
            self.sends += 1
            if self.sends == 2:  # 100 s after the claim, another worker polls
                assert run_in_threads(app, meanwhile.run_once) == [1]
            return accepted

    slow = DeliveryWorker(Slow(), name="slow", batch_size=3, lease=timedelta(seconds=60))
    assert slow.run_once() == 3

    assert sorted(fake_vonage.refs()) == sorted(f"sms-{message_id}" for message_id in ids)
    assert {sms(message_id).status for message_id in ids} == {SmsStatus.SENT}


def test_delivery_process_killed_mid_send(app, fake_vonage, vonage, monkeypatch, tmp_path):
    """A real `flask sms worker` process, killed (SIGKILL) while the provider holds its
    request: after the lease another worker sends the message, once more at most."""
    message_id = queue()
    released = threading.Event()

    def hold(request: Request) -> Response:
        released.wait(30)
        return Response("", status=503)  # nobody reads it: that worker is dead

    fake_vonage.respond(hold)
    env = {
        **os.environ,
        **{key: str(value) for key, value in fake_vonage.config.items()},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "FLASK_DEBUG": "0",
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "sms", "worker"]
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        # This interpreter's flask with fixed arguments: nothing untrusted.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    try:
        wait_for(
            lambda: fake_vonage.requests or process.poll() is not None,
            timeout=30,
            what="the worker process to send",
        )
        assert process.poll() is None, log_path.read_text()
    finally:
        process.kill()  # SIGKILL: no handler, no cleanup, mid-send
        returncode = process.wait(10)
        released.set()
    assert returncode == -signal.SIGKILL

    message = sms(message_id)
    assert message.status == SmsStatus.SENDING
    assert message.attempts == 1
    assert fake_vonage.refs() == [f"sms-{message_id}"]

    lease_end = message.lease_expires_at
    monkeypatch.setattr(clock, "now", lambda: lease_end - timedelta(seconds=1))
    assert DeliveryWorker(vonage()).run_once() == 0
    monkeypatch.setattr(clock, "now", lambda: lease_end + timedelta(seconds=1))
    assert DeliveryWorker(vonage()).run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.SENT
    assert message.attempts == 2
    assert fake_vonage.refs() == [f"sms-{message_id}"] * 2


def test_sender_breaking_the_session_is_retried_not_stuck(app, frozen):
    """A sender that fails inside the database (here: the demo phone's row already exists)
    leaves the session in a failed transaction; the worker must still record a retry."""

    class Clashing(SmsSender):
        def send(self, message: SmsMessage) -> Accepted:
            for _ in range(2):
                db.session.add(ConsoleMessage(sms_id=message.id, to_number=PHONE, body="x"))
            db.session.commit()
            raise AssertionError("unreachable")

    message_id = queue()
    assert DeliveryWorker(Clashing()).run_once() == 1

    message = sms(message_id)
    assert message.status == SmsStatus.QUEUED
    assert message.last_error == "IntegrityError"
    assert message.claimed_by is None
    frozen.now = message.next_attempt_at
    assert DeliveryWorker(ConsoleSender()).run_once() == 1
    assert sms(message_id).status == SmsStatus.SENT


# --- 7. a provider outage during checkout ---------------------------------------------------


def test_provider_outage_blocks_no_checkout_and_loses_no_alert(
    app, client, frozen, fake_vonage, vonage
):
    app.config.update(fake_vonage.config)
    product = make_product(price_minor=1000, stock=100)
    users = [make_user() for _ in range(20)]
    for user in users:
        fill_cart(user, (product, 1))
    # The provider is down: it holds each request (the worker waits out its timeout), and
    # after the checkouts it answers 503 until it recovers.
    outage_over = threading.Event()

    def down(request: Request) -> Response:
        outage_over.wait(10)
        return Response("Service Unavailable", status=503)

    fake_vonage.down(down)
    took = []
    with polling(app, DeliveryWorker(vonage(), name="during-outage"), idle_sleep=0.05):
        try:
            for user in users:
                client.sign_in_as(user)
                form = {
                    **ADDRESS,
                    "idempotency_key": secrets.token_urlsafe(24),
                    "csrf_token": client.csrf_token(),
                }
                started = time.monotonic()
                response = client.post("/checkout", data=form)
                took.append(time.monotonic() - started)
                assert response.status_code == 302, response.get_data(as_text=True)
                assert response.headers["Location"].startswith("/orders/")
        finally:
            outage_over.set()

    # No checkout waited on the provider (a correctness check, not a benchmark).
    assert max(took) < 1.0, took
    assert db.session.scalar(select(func.count()).where(Order.status == OrderStatus.PLACED)) == len(
        users
    )
    alerts_sent = db.session.scalars(
        select(SmsMessage).where(SmsMessage.kind == SmsKind.ALERT_ORDER_PLACED)
    ).all()
    assert sorted(message.user_id for message in alerts_sent) == sorted(u.id for u in users)
    assert {message.status for message in alerts_sent} == {SmsStatus.QUEUED}
    assert all(message.provider_message_id is None for message in alerts_sent)
    alert_refs = sorted(f"sms-{message.id}" for message in alerts_sent)
    tried_during_outage = len(fake_vonage.requests)
    assert tried_during_outage >= 1  # the worker was trying all along

    # The provider recovers: within 60 s every alert is out, each accepted exactly once.
    fake_vonage.up()
    after = DeliveryWorker(vonage(), name="after-outage")
    recovered_at = frozen.now
    while db.session.scalar(
        select(func.count()).where(SmsMessage.status.in_([SmsStatus.QUEUED, SmsStatus.SENDING]))
    ):
        assert frozen.now - recovered_at <= timedelta(seconds=60), "alerts still queued"
        after.run_once()
        frozen.advance(seconds=1)
    db.session.expire_all()
    assert {sms(message.id).status for message in alerts_sent} == {SmsStatus.SENT}
    assert sorted(fake_vonage.refs()[tried_during_outage:]) == alert_refs


# --- 8. the command line -----------------------------------------------------------------------


def test_cli_worker_once_drains_the_queue(app, frozen):
    ids = [queue(f"Shop: message {n}.") for n in range(25)]  # more than one batch of 10

    result = app.test_cli_runner().invoke(args=["sms", "worker", "--once"])

    assert result.exit_code == 0, result.output
    assert {sms(message_id).status for message_id in ids} == {SmsStatus.SENT}
    assert sorted(db.session.scalars(select(ConsoleMessage.sms_id))) == ids


def test_cli_worker_once_with_vonage(app, frozen, fake_vonage):
    app.config.update(fake_vonage.config)
    ids = [queue(f"Shop: message {n}.") for n in range(12)]
    fake_vonage.reject(1, "Throughput Rate Exceeded")  # the first one: retried later

    result = app.test_cli_runner().invoke(args=["sms", "worker", "--once"])

    assert result.exit_code == 0, result.output
    statuses = Counter(sms(message_id).status for message_id in ids)
    assert statuses == {SmsStatus.SENT: 11, SmsStatus.QUEUED: 1}
    assert len(fake_vonage.requests) == 12


# --- handoff latency (measured and printed, never asserted) ------------------------------


def test_handoff_latency_from_commit_to_provider(app, fake_vonage, vonage):
    """SPEC section 8's figure, measured here for information only: one worker polling every
    0.1 s, an instant provider, 50 messages committed one by one about 20 ms apart."""
    committed: dict[str, float] = {}
    with polling(app, DeliveryWorker(vonage(), name="latency"), idle_sleep=0.1):
        for n in range(50):
            message_id = queue(f"Shop: latency probe {n}.", SmsKind.ALERT_NEW_DEVICE)
            committed[f"sms-{message_id}"] = time.monotonic()
            time.sleep(0.02)
        wait_for(lambda: len(fake_vonage.requests) >= 50, timeout=30, what="50 requests")

    received = dict(zip(fake_vonage.refs(), fake_vonage.received_at, strict=True))
    assert set(received) == set(committed)
    latencies = sorted(received[ref] - committed[ref] for ref in committed)
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    print(
        f"\nSMS handoff, commit to provider, one worker polling every 0.1 s, 50 messages:"
        f" p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


class ReceiptArrivesFirst(SmsSender):
    """The provider's delivery receipt lands before its answer to the send."""

    def send(self, message: SmsMessage) -> Accepted:
        apply_receipt(
            {"messageId": "early-1", "client-ref": f"sms-{message.id}", "status": "delivered"}
        )
        db.session.commit()
        return Accepted(provider_message_id="early-1")


def test_a_receipt_that_beats_the_answer_keeps_its_final_word(app, frozen):
    message_id = queue()
    drain(DeliveryWorker(ReceiptArrivesFirst()))
    delivered = sms(message_id)
    assert delivered.status == SmsStatus.DELIVERED
    assert delivered.provider_message_id == "early-1"


class ReceiptThenLostAnswer(SmsSender):
    """The provider takes the message and its final receipt lands, but its answer to the send
    is lost: the read times out (retriable), or the error looks final."""

    def __init__(self, receipt: str, *, retriable: bool) -> None:
        self.receipt = receipt
        self.retriable = retriable
        self.sent: list[int] = []

    def send(self, message: SmsMessage) -> Accepted:
        self.sent.append(message.id)
        apply_receipt(
            {"messageId": "lost-1", "client-ref": f"sms-{message.id}", "status": self.receipt}
        )
        db.session.commit()
        raise SendFailure("Vonage did not answer within 10 s", retriable=self.retriable)


@pytest.mark.parametrize(
    ("receipt", "retriable"), [("delivered", True), ("delivered", False), ("expired", True)]
)
def test_a_final_receipt_before_a_failed_answer_is_the_last_word(app, frozen, receipt, retriable):
    order, code_sms = order_with_a_code(make_user())
    sender = ReceiptThenLostAnswer(receipt, retriable=retriable)
    worker = DeliveryWorker(sender)

    assert worker.run_once() == 1

    message = sms(code_sms)
    assert (message.status, message.receipt_status) == (receipt, receipt)
    assert message.body == message.redacted_body  # the provider had it: no copy keeps the code
    assert message.claimed_by is None
    frozen.advance(hours=1)
    assert worker.run_once() == 0
    assert sender.sent == [code_sms]  # never sent again
    # The timeline has the receipt's word, and not a failure the provider never had.
    lines = [entry.text for entry in timeline.for_owner(order)]
    assert not any("did not answer" in line for line in lines), lines
    assert (
        "The code was delivered to the phone."
        if receipt == "delivered"
        else "The code was not delivered (expired)."
    ) in lines


@pytest.mark.parametrize("receipt", ["accepted", "buffered"])
def test_an_interim_receipt_before_a_timed_out_answer_means_the_provider_has_it(
    app, frozen, receipt
):
    """The provider took the message (its receipt says so, not yet delivered) but the answer
    to the send timed out: another try would text the phone twice. The message is sent; the
    final receipt settles it later."""
    order, code_sms = order_with_a_code(make_user())
    sender = ReceiptThenLostAnswer(receipt, retriable=True)
    worker = DeliveryWorker(sender)

    assert worker.run_once() == 1

    message = sms(code_sms)
    assert (message.status, message.receipt_status) == (SmsStatus.SENT, receipt)
    assert message.body == message.redacted_body  # the provider had it: no copy keeps the code
    frozen.advance(hours=1)
    assert worker.run_once() == 0
    assert sender.sent == [code_sms]  # never sent again
    apply_receipt({"messageId": "lost-1", "client-ref": f"sms-{code_sms}", "status": "delivered"})
    db.session.commit()
    assert sms(code_sms).status == SmsStatus.DELIVERED
    lines = [entry.text for entry in timeline.for_owner(order)]
    assert not any("did not answer" in line for line in lines), lines
    assert "The code was delivered to the phone." in lines


def test_the_worker_expires_orders_whose_code_lapsed(app, client, frozen):
    user = make_user()
    product = make_product(price_minor=30_000, stock=3)
    fill_cart(user, (product, 1))
    client.sign_in_as(user)
    client.post_form(
        "/checkout",
        {
            "full_name": "Ada Lovelace",
            "address_line1": "1 Main Street",
            "city": "London",
            "postal_code": "N1 1AA",
            "country": "GB",
            "idempotency_key": "lapse-key-0000000000",
        },
    )
    pending = db.session.scalar(select(Order))
    assert pending.status == OrderStatus.PENDING_VERIFICATION
    frozen.advance(minutes=5)
    result = app.test_cli_runner().invoke(args=["sms", "worker", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Order, pending.id).status == OrderStatus.EXPIRED
    assert db.session.get(type(product), product.id).stock == 3
