"""The queries that run every worker round or on every account page, planned on SQLite and
PostgreSQL: each is served by an index that matches it, so its cost does not grow with the
history (the figures are `make bench-scale`'s; these tests hold the plans in place).

PostgreSQL would scan a table this small whatever its indexes, so its plans are asked with
sequential scans discouraged: an index that cannot serve the query (a partial index whose
condition the query does not imply) still leaves a sequential scan in the plan.
"""

from datetime import timedelta

from sqlalchemy import event

from shop import clock
from shop.accounts.client import Client
from shop.extensions import db
from shop.models import ConsoleMessage, OrderStatus, SmsKind, SmsStatus
from shop.orders import ShippingAddress, expire_pending
from shop.orders.checkout import start_checkout
from shop.sms import claims, queue_sms
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from tests import postgres
from tests.factories import ADDRESS, fill_cart, make_product, make_user, set_rules

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app
any_app = postgres.any_app


class Statements:
    """The statements the app runs inside the block, with their parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def __enter__(self) -> "Statements":
        event.listen(db.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_) -> None:
        event.remove(db.engine, "before_cursor_execute", self._record)

    def _record(self, _connection, _cursor, statement, parameters, _context, _many) -> None:
        self.seen.append((statement, parameters))

    def on(self, table: str) -> list[tuple[str, object]]:
        return [(sql, params) for sql, params in self.seen if f"FROM {table}" in sql]


def plan(statement: str, parameters) -> str:
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            text = "\n".join(row[3] for row in rows)
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            text = "\n".join(row[0] for row in rows)
        connection.rollback()
    return text


def assert_served_by(
    statements: list[tuple[str, object]], table: str, index: str, *alternatives: str
) -> None:
    assert statements, f"no statement on {table}"
    for statement, parameters in statements:
        shown = plan(statement, parameters)
        assert any(name in shown for name in (index, *alternatives)), shown
        assert f"SCAN {table}\n" not in shown + "\n" and f"Seq Scan on {table}" not in shown


def test_the_claim_finds_due_messages_on_the_outbox_index_in_two_statements(any_app):
    for _ in range(3):
        queue_sms("+447700900123", "Shop: hello.", SmsKind.ALERT_NEW_DEVICE)
    db.session.commit()
    with Statements() as seen:
        claimed = DeliveryWorker(ConsoleSender(), batch_size=2).claim()
    assert len(claimed) == 2 and claimed[0].id < claimed[1].id
    assert all(message.status == SmsStatus.SENDING for message in claimed)
    # "Anything due?" and one UPDATE ... RETURNING: no reading the claim back by claim id.
    statements = seen.on("sms_messages")
    assert len(statements) == 2 and "RETURNING" in statements[1][0]
    # Without statistics SQLite may take the SMS console's (status, created_at, id) index:
    # it too reads only the queued and sending messages.
    assert_served_by(
        statements, "sms_messages", "ix_sms_messages_outbox", "ix_sms_messages_status_created_at"
    )


def test_the_sweep_finds_expired_codes_and_readable_copies_on_their_indexes(any_app):
    queue_sms(
        "+447700900123",
        "Shop: 123456 is your code.",
        SmsKind.OTP_LOGIN,
        redacted_body="Shop: •••••• is your code.",
        expires_at=clock.now() - timedelta(seconds=1),
    )
    sent = queue_sms("+447700900123", "Shop: 654321 is your code.", SmsKind.OTP_LOGIN)
    db.session.flush()
    db.session.add(
        ConsoleMessage(
            sms_id=sent.id,
            to_number=sent.to_number,
            body=sent.body,
            redacted_body="Shop: •••••• is your code.",
            expires_at=clock.now() - timedelta(seconds=1),
        )
    )
    db.session.commit()
    with Statements() as seen:
        claims.sweep()
    assert_served_by(
        seen.on("sms_messages"),
        "sms_messages",
        "ix_sms_messages_queued_expiry",
        "ix_sms_messages_status_created_at",  # SQLite without statistics: queued rows only
    )
    assert_served_by(
        seen.on("console_messages"), "console_messages", "ix_console_messages_readable"
    )
    assert db.session.get(ConsoleMessage, 1).body.startswith("Shop: ••••••")


def test_expiring_pending_orders_reads_only_the_pending_index(any_app):
    set_rules(otp_threshold_minor=100)
    user = make_user()
    fill_cart(user, (make_product(price_minor=30_000, stock=3), 1))
    order = start_checkout(user, ShippingAddress(**ADDRESS), "k" * 32, Client("203.0.113.9")).order
    assert order.status == OrderStatus.PENDING_VERIFICATION
    with Statements() as seen:
        expire_pending(clock.now() + timedelta(hours=1))
    # The search; then each lapsed order is moved by its primary key. Without statistics
    # SQLite may pick the review queue's (status, created_at) index: it too reads only the
    # pending orders.
    assert_served_by(
        seen.on("orders")[:1], "orders", "ix_orders_pending_expiry", "ix_orders_status_created_at"
    )
    db.session.refresh(order)
    assert order.status == OrderStatus.EXPIRED


def test_the_security_page_reads_the_accounts_events_on_their_index(any_app):
    user = make_user()
    client = any_app.test_client()
    client.sign_in_as(user)
    with Statements() as seen:
        assert client.get("/account/security").status_code == 200
    assert_served_by(seen.on("audit_events"), "audit_events", "ix_audit_events_user_id_id")


def test_the_checkout_reads_the_accounts_own_orders_on_its_index(any_app):
    """The risk inputs (orders and amount in 24 h, since the last code, devices and
    addresses seen) read the account's orders only, never the shop's orders of a day."""
    user = make_user()
    fill_cart(user, (make_product(price_minor=1_000, stock=3), 1))
    with Statements() as seen:
        start_checkout(user, ShippingAddress(**ADDRESS), "p" * 32, Client("203.0.113.9"))
    counted = [
        (sql, parameters)
        for sql, parameters in seen.on("orders")
        if "WHERE orders.user_id =" in sql
        and "idempotency_key =" not in sql  # the unique (account, key) look-up of a resubmit
    ]
    assert len(counted) >= 5
    assert_served_by(counted, "orders", "ix_orders_user_id_created_at")
