"""A busy shop's last month, written in bulk on top of the demo (`make bench-scale`).

`generate(size)` writes the customers, products and events of `bench.scale.history` through
`BulkWriter` (executemany on SQLite, COPY on PostgreSQL), with the big tables' indexes built
after the load; `leave_work_for_the_worker` leaves the newest alerts due, retrying or in
flight, as a delivery worker finds an outbox on a busy day. A million orders through the use
cases would take hours; this takes minutes, and the tiny data set of
tests/test_bench_scale.py shows the app reads the result as its own.
"""

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from bench.scale.bulk import BulkWriter
from bench.scale.history import History
from bench.scale.rows import Rows
from bench.scale.sizes import Size
from shop import tallies
from shop.extensions import db
from shop.models import SmsMessage, SmsStatus

DUE_MESSAGES = 10  # queued and due: what the delivery worker's next claim takes
RETRYING_MESSAGES = 5  # queued for a later attempt after a failure
IN_FLIGHT_MESSAGES = 3  # claimed by a worker whose lease is still running
# Never handed to the provider: no provider id, price, send time or receipt.
UNSENT_COLUMNS = (
    "provider_message_id",
    "provider_price",
    "sent_at",
    "receipt_status",
    "receipt_error_code",
    "receipt_at",
)


def leave_work_for_the_worker(connection, now: datetime) -> None:
    """The newest alerts become due, retrying after a failure, or in flight: the outbox as
    a delivery worker finds it on a busy day (the demo's too, for S)."""
    newest = connection.scalars(
        select(SmsMessage.id)
        .where(SmsMessage.kind.like("alert_%"))
        .order_by(SmsMessage.id.desc())
        .limit(DUE_MESSAGES + RETRYING_MESSAGES + IN_FLIGHT_MESSAGES)
    ).all()
    unsent = dict.fromkeys(UNSENT_COLUMNS)
    due = {"status": SmsStatus.QUEUED, "attempts": 0, "next_attempt_at": SmsMessage.created_at}
    retrying = {
        "status": SmsStatus.QUEUED,
        "attempts": 2,
        "next_attempt_at": now + timedelta(minutes=30),
        "last_error": "ReadTimeout",
    }
    in_flight = {
        "status": SmsStatus.SENDING,
        "attempts": 1,
        "claimed_by": "bench-worker:0001",
        "lease_expires_at": now + timedelta(hours=1),
    }
    first_retrying, first_in_flight = DUE_MESSAGES, DUE_MESSAGES + RETRYING_MESSAGES
    for ids, values in (
        (newest[:first_retrying], due),
        (newest[first_retrying:first_in_flight], retrying),
        (newest[first_in_flight:], in_flight),
    ):
        if ids:
            connection.execute(
                update(SmsMessage).where(SmsMessage.id.in_(ids)).values(**unsent, **values)
            )


BIG_TABLES = (
    "orders",
    "order_items",
    "otp_challenges",
    "step_ups",
    "sms_messages",
    "audit_events",
)


def _indexes_set_aside(cursor, dialect: str) -> list[str]:
    """Drop the big tables' plain indexes (not those behind a constraint) and return the
    statements that make them again: built once after the load, from sorted data, they
    cost a fraction of keeping them up to date row by row."""
    if dialect == "sqlite":
        marks = ", ".join("?" * len(BIG_TABLES))
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608 (placeholders)
            f"AND tbl_name IN ({marks})",
            BIG_TABLES,
        )
    else:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(BIG_TABLES),),
        )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [statement for _, statement in indexes]


def _triggers_set_aside(cursor) -> list[str]:
    """SQLite: drop the big tables' triggers (the tallies', which look up each order's codes
    row by row) and return the statements that make them again; the caller counts the
    tallies afresh (`shop.tallies.rebuild`). PostgreSQL's load runs with triggers off."""
    marks = ", ".join("?" * len(BIG_TABLES))
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "  # noqa: S608 (placeholders)
        f"AND tbl_name IN ({marks})",
        BIG_TABLES,
    )
    triggers = cursor.fetchall()
    for name, _ in triggers:
        cursor.execute(f'DROP TRIGGER "{name}"')
    return [statement for _, statement in triggers]


def generate(size: Size, *, now: datetime | None = None, seed: int = 12) -> dict[str, int]:
    """Add `size`'s rows to the app's database (in an app context, after `seed-demo`)."""
    now = now or datetime.now(UTC)
    dialect = db.engine.dialect.name
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        cursor = raw.cursor()
        if dialect == "sqlite":
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA cache_size = -200000")
        else:
            # The generator keeps the rows consistent; foreign-key checks row by row and the
            # catalog trigger would only slow the load (the version is bumped below).
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET maintenance_work_mem = '256MB'")
        indexes = _indexes_set_aside(cursor, dialect)
        triggers = _triggers_set_aside(cursor) if dialect == "sqlite" else []
        raw.commit()
        rng = random.Random(seed)  # noqa: S311 (a reproducible data set, not a secret)
        rows = Rows(BulkWriter(driver, dialect), rng, now.timestamp(), now.timestamp() - 300)
        counts = History(rows, size, rng).run()
        for statement in indexes + triggers:
            cursor.execute(statement)
        if dialect != "sqlite":
            cursor.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        cursor.close()
    finally:
        raw.close()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE catalog_version SET version = version + 1 WHERE id = 1"))
        if dialect == "postgresql":
            for table in counts:
                if "id" not in db.metadata.tables[table].columns:
                    continue  # keyed by its order's id: no sequence of its own
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    # The load wrote with the tallies' triggers off: count them from the rows.
    tallies.rebuild()
    if dialect == "postgresql":
        # What autovacuum would have done by the time a shop has this much history.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return counts
