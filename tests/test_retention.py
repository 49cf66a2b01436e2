"""Retention: `flask sms prune` and `flask audit prune`, on SQLite and PostgreSQL.

What is past retention goes, a batch per transaction; what the owner's figures, the rule
history and the outbox still need stays; and the web writes between two batches.
"""

import threading
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from shop import audit, clock
from shop.extensions import db
from shop.models import (
    AuditEvent,
    ConsoleMessage,
    OtpChallenge,
    SendRefusal,
    SmsKind,
    SmsMessage,
    SmsStatus,
)
from shop.retention import Batches
from shop.sms import retention
from tests import postgres
from tests.factories import make_user

postgres_server = postgres.postgres_server
pg_database = postgres.pg_database
pg_app = postgres.pg_app

PHONE = "+447700900123"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, frozen_clock):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def message(days_old: float, status: SmsStatus = SmsStatus.DELIVERED, **fields) -> SmsMessage:
    at = clock.now() - timedelta(days=days_old)
    sms = SmsMessage(
        to_number=PHONE,
        body="Shop: order SH-1 was placed.",
        kind=SmsKind.ALERT_ORDER_PLACED,
        status=status,
        created_at=at,
        next_attempt_at=at,
        **fields,
    )
    db.session.add(sms)
    db.session.commit()
    return sms


def event(days_old: float, name: audit.Event = audit.Event.SIGN_IN) -> AuditEvent:
    row = AuditEvent(event=name, at=clock.now() - timedelta(days=days_old), detail="")
    db.session.add(row)
    db.session.commit()
    return row


def ids(model) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(select(model.id)))


def test_sms_prune_deletes_finished_messages_past_retention_only(any_app):
    user = make_user(phone=PHONE)
    old = [message(91, status) for status in ("delivered", "sent", "failed", "dropped")]
    waiting = [message(200, SmsStatus.QUEUED), message(200, SmsStatus.SENDING)]
    recent = message(89)
    coded = old[3]
    challenge = OtpChallenge(
        user_id=user.id,
        purpose="order",
        binding="b" * 64,
        phone=PHONE,
        client_ip="203.0.113.9",
        code_hmac="h" * 64,
        sms_id=coded.id,
        expires_at=coded.created_at + timedelta(minutes=5),
        ended_at=coded.created_at + timedelta(minutes=5),
        end_reason="expired",
    )
    db.session.add(challenge)
    db.session.add(ConsoleMessage(sms_id=old[0].id, to_number=PHONE, body="copy"))
    db.session.add_all(
        SendRefusal(reason="cooldown", purpose="login", phone=PHONE, client_ip="203.0.113.9", at=at)
        for at in (clock.now() - timedelta(days=95), clock.now() - timedelta(days=5))
    )
    db.session.commit()

    result = any_app.test_cli_runner().invoke(args=["sms", "prune"])

    assert result.exit_code == 0, result.output
    assert "Deleted 4 SMS and 1 refused sends older than 90 days." in result.output
    assert ids(SmsMessage) == {message.id for message in [*waiting, recent]}
    assert ids(ConsoleMessage) == set()
    assert db.session.get(OtpChallenge, challenge.id).sms_id is None  # the code's record stays
    assert db.session.scalar(select(func.count(SendRefusal.id))) == 1


def test_audit_prune_keeps_rule_changes_and_what_is_recent(any_app):
    event(366)
    kept = {event(2000, audit.Event.RULES_CHANGED).id, event(364).id}

    result = any_app.test_cli_runner().invoke(args=["audit", "prune"])

    assert result.exit_code == 0, result.output
    assert "Deleted 1 audit events older than 365 days." in result.output
    assert ids(AuditEvent) == kept


def test_retention_comes_from_the_settings_and_the_command_line(app, frozen_clock):
    app.config.update(SMS_RETENTION_DAYS=30, AUDIT_RETENTION_DAYS=10)
    kept, _ = message(29).id, message(31)
    kept_event, _ = event(9).id, event(11)
    runner = app.test_cli_runner()

    assert runner.invoke(args=["sms", "prune"]).exit_code == 0
    assert runner.invoke(args=["audit", "prune"]).exit_code == 0
    assert ids(SmsMessage) == {kept} and ids(AuditEvent) == {kept_event}

    assert "Deleted 1 SMS" in runner.invoke(args=["sms", "prune", "--days", "7"]).output
    too_few = runner.invoke(args=["sms", "prune", "--days", "6"])
    assert too_few.exit_code == 2 and "keep between 7 and 36,500 days" in too_few.output
    app.config["AUDIT_RETENTION_DAYS"] = 0
    refused = runner.invoke(args=["audit", "prune"])
    assert refused.exit_code == 2
    assert "keep between 1 and 36,500 days (AUDIT_RETENTION_DAYS is 0)" in refused.output
    # Past a century the cut-off would be before the first day a date can hold: a usage
    # error, not a traceback, whether asked on the command line or configured.
    assert runner.invoke(args=["sms", "prune", "--days", "36500"]).exit_code == 0
    too_many = runner.invoke(args=["sms", "prune", "--days", "1000000"])
    assert too_many.exit_code == 2 and "keep between 7 and 36,500 days" in too_many.output
    app.config["AUDIT_RETENTION_DAYS"] = 999_999_999
    assert runner.invoke(args=["audit", "prune"]).exit_code == 2
    assert ids(AuditEvent) == {kept_event}


def _other_connection(url: str):
    """A connection of another process (the web), that gives up at once if it must wait."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        return sqlite3.connect(parsed.database, timeout=0, isolation_level=None)
    connection = psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    )
    connection.autocommit = True
    connection.execute("SET lock_timeout = '10ms'")
    return connection


def test_each_batch_commits_on_its_own_and_the_web_writes_in_between(any_app, monkeypatch):
    for _ in range(25):
        message(100)
    url = any_app.config["SQLALCHEMY_DATABASE_URI"]
    web = _other_connection(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    insert = (
        "INSERT INTO sms_messages (to_number, kind, body, status, attempts, next_attempt_at, "  # noqa: S608 (placeholders)
        f"created_at, updated_at) VALUES ({', '.join([mark] * 8)})"
    )
    written = []

    def web_writes_while_the_pruner_waits(seconds: float) -> None:
        at = (clock.now() - timedelta(days=1)).replace(tzinfo=None).isoformat(" ")
        web.execute(insert, (PHONE, "alert_new_device", "Shop: hi.", "queued", 0, at, at, at))
        written.append(seconds)

    monkeypatch.setattr("shop.retention.time.sleep", web_writes_while_the_pruner_waits)
    pruned = retention.prune_sms(clock.now() - timedelta(days=90), Batches(size=10, pause=0.2))
    web.close()

    assert pruned.messages == 25
    assert len(written) == 2 and all(seconds >= 0.2 for seconds in written)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(SmsMessage.id))) == 2  # the web's


def test_on_postgresql_a_prune_waits_for_no_request(pg_app, frozen_clock):
    """Rows a request holds (a message being claimed, an order's SMS being written) are never
    the old, finished ones the pruner deletes: it finishes while the request is still open."""
    for _ in range(5):
        message(100)
    busy = message(0, SmsStatus.QUEUED)
    web = _other_connection(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    web.autocommit = False
    web.execute("SELECT id FROM sms_messages WHERE id = %s FOR UPDATE", (busy.id,))
    try:
        finished = threading.Event()

        def prune() -> None:
            with pg_app.app_context():
                retention.prune_sms(clock.now() - timedelta(days=90))
                db.session.remove()
            finished.set()

        pruner = threading.Thread(target=prune)
        pruner.start()
        assert finished.wait(timeout=30)
        pruner.join()
    finally:
        web.rollback()
        web.close()
    assert ids(SmsMessage) == {busy.id}
    assert db.session.execute(text("SELECT 1")).scalar() == 1
