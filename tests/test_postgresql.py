"""The concurrency guarantees of SPEC section 7 on a real PostgreSQL server (tests/postgres.py).

Each test has a database of its own built by the real migrations; requests and delivery
workers run in threads, each with a session and a connection of its own, as several web and
worker processes would.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from shop import create_app
from shop.extensions import db
from shop.models import (
    AuditEvent,
    ConsoleMessage,
    Order,
    OrderStatus,
    OtpPurpose,
    Product,
    SmsKind,
    SmsMessage,
    SmsStatus,
    User,
)
from shop.otp import SendRefused
from shop.otp.texts import code_sms
from shop.sms import queue_sms
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import Accepted, ConsoleSender, SendFailure, SmsSender
from tests import postgres
from tests.factories import (
    ADDRESS,
    ALLOW_ALL,
    confirmations,
    fill_cart,
    last_code_sent_to,
    last_sms_to,
    make_product,
    make_user,
    set_rules,
)
from tests.postgres import pg_config_for

# Fixtures: one server for the session, an empty database per test, an app migrated on it.
postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app

KEY = "k" * 32
PHONE = "+447700900123"
IP = "203.0.113.9"


def order_count() -> int:
    return db.session.scalar(select(func.count(Order.id)))


def stock_of(product_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Product, product_id).stock


def in_parallel(count: int, task: Callable[[int], object]) -> list:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


# --- schema -----------------------------------------------------------------------------------


def schema_differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def table_names() -> set[str]:
    with db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_migrations_build_the_models_schema_and_go_down_and_up_again(pg_database, tmp_path):
    app = create_app(pg_config_for(pg_database, tmp_path))
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        flask_migrate.upgrade()
        assert schema_differences() == []
        assert set(db.metadata.tables) <= table_names()

        flask_migrate.downgrade(revision="base")
        assert table_names() == {"alembic_version"}

        flask_migrate.upgrade()
        assert schema_differences() == []
        db.engine.dispose()


def test_the_engine_keeps_the_pool_settings_given_to_it(pg_app):
    pool = db.engine.pool
    assert (pool.size(), pool._max_overflow, pool._pre_ping) == (30, 20, True)


# --- checkout ---------------------------------------------------------------------------------


def test_fifty_concurrent_buyers_of_the_last_five_units_make_five_orders(pg_app):
    set_rules(**ALLOW_ALL.as_dict())
    product = make_product(stock=5, price_minor=4999)
    product_id = product.id
    clients, forms = [], []
    for number in range(50):
        user = make_user(f"buyer{number}@example.com")
        fill_cart(user, (product, 1))
        each = pg_app.test_client()
        each.sign_in_as(user)
        clients.append(each)
        forms.append(
            {
                **ADDRESS,
                "idempotency_key": f"buyer-key-{number:04d}-abcdef",
                "csrf_token": each.csrf_token(),
            }
        )
    db.session.commit()  # the test's own connection goes back to the pool

    statuses = in_parallel(
        50, lambda index: clients[index].post("/checkout", data=forms[index]).status_code
    )

    assert statuses.count(302) == 5
    assert statuses.count(409) == 45
    assert order_count() == 5
    assert stock_of(product_id) == 0


def test_ten_parallel_submits_with_one_key_make_one_order_and_another_cart_gets_422(pg_app):
    set_rules(**ALLOW_ALL.as_dict())
    user = make_user()
    product, other = make_product(stock=20), make_product(stock=5)
    product_id, other_id = product.id, other.id
    fill_cart(user, (product, 2))
    clients = [pg_app.test_client() for _ in range(10)]
    forms = []
    for each in clients:
        each.sign_in_as(user)
        forms.append({**ADDRESS, "idempotency_key": KEY, "csrf_token": each.csrf_token()})
    db.session.commit()

    def submit(index: int) -> tuple[int, str | None]:
        response = clients[index].post("/checkout", data=forms[index])
        return response.status_code, response.headers.get("Location")

    results = in_parallel(10, submit)

    ref = db.session.scalar(select(Order.ref))
    assert order_count() == 1
    assert results == [(302, f"/orders/{ref}")] * 10
    assert stock_of(product_id) == 18

    fill_cart(user, (product, 1), (other, 3))
    response = clients[0].post_form("/checkout", {**ADDRESS, "idempotency_key": KEY})
    assert response.status_code == 422
    assert "already used for a different cart" in response.get_data(as_text=True)
    assert order_count() == 1
    assert stock_of(other_id) == 5


def test_twenty_concurrent_confirms_of_one_code_place_the_order_once(pg_app):
    shopper = make_user()
    product = make_product(price_minor=30_000, stock=5)
    product_id = product.id
    fill_cart(shopper, (product, 1))
    clients = [pg_app.test_client() for _ in range(20)]
    for each in clients:
        each.sign_in_as(shopper)
    response = clients[0].post_form(
        "/checkout", {**ADDRESS, "idempotency_key": "stepup-key-000000000"}
    )
    assert response.headers["Location"].startswith("/checkout/verify/SH-")
    ref = response.headers["Location"].rsplit("/", 1)[-1]
    code = last_code_sent_to(shopper.phone)
    tokens = [each.csrf_token() for each in clients]
    db.session.commit()

    def submit(index: int) -> int:
        data = {"code": code, "csrf_token": tokens[index]}
        return clients[index].post(f"/checkout/verify/{ref}", data=data).status_code

    statuses = in_parallel(20, submit)

    db.session.expire_all()
    placed = db.session.scalar(select(Order).where(Order.ref == ref))
    assert placed.status == OrderStatus.PLACED and placed.step_up_verified_at is not None
    alerts = db.session.scalar(
        select(func.count(SmsMessage.id)).where(SmsMessage.kind == SmsKind.ALERT_ORDER_PLACED)
    )
    assert alerts == 1
    assert order_count() == 1
    assert stock_of(product_id) == 4
    # A 302 is also the answer to a confirm of a placed order: what counts is that the code
    # was taken once (consumed, audited) and the order confirmed once.
    assert statuses.count(302) >= 1
    assert all(status in (302, 409, 422) for status in statuses), statuses
    assert confirmations(ref) == (1, 1, 1)


# --- SMS delivery -----------------------------------------------------------------------------


class RecordingSender(ConsoleSender):
    """The console sender, noting the id of every message it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def send(self, message: SmsMessage) -> Accepted:
        self.sent.append(message.id)
        return super().send(message)


def queue_messages(count: int) -> list[int]:
    messages = [
        queue_sms(PHONE, f"Shop: message {number}.", SmsKind.ALERT_ORDER_PLACED)
        for number in range(count)
    ]
    db.session.flush()
    ids = [message.id for message in messages]
    db.session.commit()
    return ids


def run_together(app, names: list[str], task: Callable[[str], object]) -> dict[str, object]:
    """Run `task(name)` in one thread per name, each with an app context (a session and a
    connection) of its own, released together by a barrier; re-raise any thread's error."""
    start = threading.Barrier(len(names))
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with app.app_context():
                try:
                    start.wait(timeout=30)
                    results[name] = task(name)
                finally:
                    db.session.remove()
        except BaseException as error:
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def test_two_delivery_workers_send_each_of_200_messages_exactly_once(pg_app):
    ids = queue_messages(200)
    senders = {"a": RecordingSender(), "b": RecordingSender()}

    def deliver_all(name: str) -> int:
        worker = DeliveryWorker(senders[name], name=f"worker-{name}", batch_size=10)
        handled = 0
        while batch := worker.run_once():
            handled += batch
        return handled

    handled = run_together(pg_app, ["a", "b"], deliver_all)

    sent = Counter(senders["a"].sent + senders["b"].sent)
    assert set(sent) == set(ids)
    assert set(sent.values()) == {1}
    assert senders["a"].sent and senders["b"].sent, "both workers should have taken a share"
    assert handled == {"a": len(senders["a"].sent), "b": len(senders["b"].sent)}
    db.session.expire_all()
    assert db.session.scalar(select(func.count(ConsoleMessage.id))) == 200
    assert db.session.scalar(select(func.count(func.distinct(ConsoleMessage.sms_id)))) == 200
    outcomes = db.session.execute(select(SmsMessage.status, SmsMessage.attempts)).all()
    assert Counter(outcomes) == {(SmsStatus.SENT, 1): 200}
    assert db.session.scalar(select(func.count()).where(SmsMessage.claimed_by.is_not(None))) == 0


def test_claims_started_together_never_share_a_row(pg_app):
    ids = queue_messages(200)
    claimed: list[int] = []
    for round_ in range(5):
        workers = {
            name: DeliveryWorker(ConsoleSender(), name=f"claim-{name}{round_}", batch_size=10)
            for name in ("a", "b")
        }

        def claim(name: str, workers=workers) -> list[int]:
            return [message.id for message in workers[name].claim()]

        batches = run_together(pg_app, ["a", "b"], claim)
        assert len(batches["a"]) == len(batches["b"]) == 10
        assert set(batches["a"]).isdisjoint(batches["b"])
        claimed += batches["a"] + batches["b"]

    assert len(set(claimed)) == len(claimed) == 100
    assert set(claimed) <= set(ids)
    db.session.expire_all()
    sending = db.session.scalars(
        select(SmsMessage.id).where(SmsMessage.status == SmsStatus.SENDING)
    ).all()
    assert sorted(sending) == sorted(claimed)


def test_a_claim_skips_rows_another_transaction_holds_instead_of_waiting(pg_app):
    queue_messages(30)
    due_first = select(SmsMessage.id).order_by(SmsMessage.next_attempt_at, SmsMessage.id).limit(10)
    with db.engine.connect() as other:
        locked = set(other.scalars(due_first.with_for_update()).all())
        worker = DeliveryWorker(ConsoleSender(), name="skipper", batch_size=10)
        claimed = run_together(
            pg_app, ["claim"], lambda _: {message.id for message in worker.claim()}
        )["claim"]
        other.rollback()
    assert len(locked) == len(claimed) == 10
    assert claimed.isdisjoint(locked)


class TimesOut(SmsSender):
    def send(self, message: SmsMessage) -> Accepted:
        raise SendFailure("Vonage did not answer within 10 s", retriable=True)


def waiting_on_a_lock() -> bool:
    """Whether a session of this database waits for a row another transaction holds."""
    with db.engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_a_failed_send_waits_for_a_resend_ending_its_code_and_drops_it(pg_app):
    # A resend ends the old code while its SMS is being sent (status `sending`, which the
    # resend leaves alone), and has not committed when the failed send is recorded. The
    # worker must wait for it and drop the message: queued again, it would send a dead code.
    otp = pg_app.extensions["otp"]
    text_of = code_sms("Shop", "confirm order SH-TEST for €300.00", "http://127.0.0.1:5000")
    user = make_user()
    user_id = user.id
    old_sms = otp.issue(user, OtpPurpose.ORDER, "order-a", client_ip=IP, text=text_of).sms_id
    db.session.commit()
    worker = DeliveryWorker(TimesOut(), name="slow-provider")
    [claimed] = worker.claim()
    ended, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def resend() -> None:
        with pg_app.app_context():
            try:
                user = db.session.get(User, user_id)
                otp.issue(user, OtpPurpose.ORDER, "order-a", client_ip=IP, text=text_of)
                ended.set()
                commit.wait(30)
                db.session.commit()
            except BaseException as error:
                errors.append(error)
                ended.set()
            finally:
                db.session.remove()

    def record_the_failure() -> None:
        with pg_app.app_context():
            try:
                worker.deliver(claimed)
            except BaseException as error:
                errors.append(error)
            finally:
                db.session.remove()

    db.session.commit()
    resending = threading.Thread(target=resend)
    resending.start()
    assert ended.wait(30)
    recording = threading.Thread(target=record_the_failure)
    recording.start()
    deadline = time.monotonic() + 30
    while recording.is_alive() and not waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    commit.set()
    for thread in (resending, recording):
        thread.join(60)
    assert not resending.is_alive() and not recording.is_alive(), "a thread hung"
    if errors:
        raise errors[0]

    db.session.expire_all()
    message = db.session.get(SmsMessage, old_sms)
    assert message.status == SmsStatus.DROPPED
    assert message.body == message.redacted_body
    assert message.claimed_by is None


# --- step-up lock -----------------------------------------------------------------------------


def test_the_tenth_wrong_code_in_24_hours_locks_step_up(pg_app, frozen_clock):
    otp = pg_app.extensions["otp"]
    text = code_sms("Shop", "confirm order SH-TEST for €300.00", "http://127.0.0.1:5000")
    user = make_user()
    results = []
    for binding in ("order-a", "order-b"):
        otp.issue(user, OtpPurpose.ORDER, binding, client_ip=IP, text=text)
        db.session.commit()
        code = last_code_sent_to(user.phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            results.append(otp.verify(user, OtpPurpose.ORDER, binding, wrong, client_ip=IP))
            db.session.commit()
        frozen_clock.advance(minutes=6)

    assert [result.outcome for result in results[:4]] == ["wrong"] * 4
    assert results[-1].outcome == "locked"
    assert otp.lockout.is_locked(user)
    assert last_sms_to(user.phone).kind == SmsKind.ALERT_CODE_LOCKED
    events = db.session.scalars(select(AuditEvent.event)).all()
    assert events.count("code_failed") == 10 and "step_up_locked" in events
    with pytest.raises(SendRefused, match="locked"):
        otp.issue(user, OtpPurpose.ORDER, "order-c", client_ip=IP, text=text)
    db.session.rollback()
    frozen_clock.advance(hours=24)
    assert not otp.lockout.is_locked(user)
