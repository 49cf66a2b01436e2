"""indexes for a long history; stock changes apart from the catalog version; tallies kept by
triggers; what each risk decision saw

Revision ID: 540ec029f4ee
Revises: f6ec988aae5d
Create Date: 2026-11-26 00:24:11.957775

- Partial indexes that hold only the rows the delivery worker looks for every round, so
  that a round costs the same with millions of past messages and orders: the outbox
  (queued or being sent, by when due), queued messages by expiry, readable console copies
  by expiry, pending orders by expiry. They replace `ix_sms_messages_due` (status,
  next_attempt_at), whose `status` prefix made the claim scan and sort every queued row.
- Keyset pages of the owner's lists: SMS by (status, created_at, id), orders by
  (risk_outcome, created_at), audit events by (event, at).
- `otp_challenges (sms_id)`: `flask sms prune` lets go of old messages there, and deleting a
  message makes the database look for rows that still name it.
- `catalog_version.stock_version`: the triggers on `products` now bump `version` when a
  product is added, removed or edited, and `stock_version` when only its stock changes, so
  that an order no longer makes every web process render its catalog pages again.

- `order_tallies`, `sms_tallies`, `code_tallies`: counts per hour of creation kept by
  triggers on `orders`, `sms_messages` and `otp_challenges` (appended to, never updated:
  see shop/models/tallies.py), filled here from the existing rows; the owner's figures read
  them instead of scanning the history.
- `decision_inputs`: what the rules saw at each order's decision, as narrow columns, filled
  here from `orders.risk_inputs`; the backtest aggregates over it in SQL.

On PostgreSQL the indexes on the big tables are built CONCURRENTLY, outside the migration's
transaction: a shop with a long history keeps taking orders and sending SMS meanwhile.
"""
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '540ec029f4ee'
down_revision = 'f6ec988aae5d'
branch_labels = None
depends_on = None

OUTBOX = "status IN ('queued', 'sending')"
QUEUED = "status = 'queued'"
PENDING = "status = 'pending_verification'"
READABLE = "body != redacted_body"
# (table, index, columns, partial condition or None)
INDEXES = (
    ("sms_messages", "ix_sms_messages_outbox", ["next_attempt_at", "id"], OUTBOX),
    ("sms_messages", "ix_sms_messages_queued_expiry", ["expires_at"], QUEUED),
    ("console_messages", "ix_console_messages_readable", ["expires_at"], READABLE),
    ("orders", "ix_orders_pending_expiry", ["expires_at"], PENDING),
    ("otp_challenges", "ix_otp_challenges_sms_id", ["sms_id"], None),
    ("sms_messages", "ix_sms_messages_status_created_at", ["status", "created_at", "id"], None),
    ("orders", "ix_orders_risk_outcome_created_at", ["risk_outcome", "created_at"], None),
    ("audit_events", "ix_audit_events_event_at", ["event", "at"], None),
)

BUMP_VERSION = "UPDATE catalog_version SET version = version + 1 WHERE id = 1"
BUMP_STOCK = "UPDATE catalog_version SET stock_version = stock_version + 1 WHERE id = 1"
EDITED_COLUMNS = "id, name, description, price_minor, currency"


ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOUR = {
    "sqlite": "CAST(strftime('%s', {r}.{at}) AS INTEGER) / 3600",
    "postgresql": "floor(extract(epoch FROM {r}.{at}) / 3600)::bigint",
}
PRICE_UNITS = {
    "sqlite": "CAST(ROUND(CAST({r}.provider_price AS NUMERIC) * 100000000) AS INTEGER)",
    "postgresql": "ROUND(CAST({r}.provider_price AS NUMERIC) * 100000000)::bigint",
}
NEEDED_CODE = (
    "(COALESCE({r}.risk_outcome, '') = 'otp' OR EXISTS (SELECT 1 FROM otp_challenges c "
    "WHERE c.order_id = {r}.id AND c.purpose = 'order'))"
)
# tally table: (counted table, the time its hour is of, [(key column, expression)],
# [(count column, expression)], columns whose change moves a row between tallies, which rows
# count)
TALLIES = {
    "order_tallies": (
        "orders",
        "created_at",
        [
            ("status", "{r}.status"),
            ("outcome", "COALESCE({r}.risk_outcome, '')"),
            ("needed_code", NEEDED_CODE),
            ("verified", "({r}.step_up_verified_at IS NOT NULL)"),
        ],
        [("orders", "1"), ("value_minor", "{r}.total_minor")],
        ["status", "risk_outcome", "step_up_verified_at", "total_minor"],
        None,
    ),
    "sms_tallies": (
        "sms_messages",
        "created_at",
        [("status", "{r}.status"), ("sent", "({r}.sent_at IS NOT NULL)")],
        [("messages", "1")],
        ["status", "sent_at"],
        None,
    ),
    "code_tallies": (
        "otp_challenges",
        "created_at",
        [("purpose", "{r}.purpose"), ("consumed", "({r}.consumed_at IS NOT NULL)")],
        [("codes", "1")],
        ["purpose", "consumed_at"],
        None,
    ),
    "spend_tallies": (
        "sms_messages",
        "sent_at",
        [],
        [("messages", "1"), ("price_units", "{price_units}")],
        ["sent_at", "provider_price"],
        "{r}.sent_at IS NOT NULL AND {r}.provider_price IS NOT NULL",
    ),
}


def _expression(dialect, template, row):
    price_units = PRICE_UNITS[dialect].format(r=row)
    return template.format(r=row, price_units=price_units)


def _append(dialect, tally, row, sign):
    """INSERT of the tally row for `row` (NEW or OLD) counted `sign` times."""
    _, at, keys, counts, _, condition = TALLIES[tally]
    names = ["hour", *(name for name, _ in keys), *(name for name, _ in counts)]
    values = [HOUR[dialect].format(r=row, at=at)]
    values += [_expression(dialect, expression, row) for _, expression in keys]
    values += [f"{sign} * {_expression(dialect, expression, row)}" for _, expression in counts]
    insert = f"INSERT INTO {tally} ({', '.join(names)}) SELECT {', '.join(values)}"
    return insert + (f" WHERE {condition.format(r=row)}" if condition else " WHERE 1 = 1")


def _backfill(dialect, tally):
    table, at, keys, counts, _, condition = TALLIES[tally]
    names = ["hour", *(name for name, _ in keys), *(name for name, _ in counts)]
    groups = [HOUR[dialect].format(r="t", at=at)]
    groups += [_expression(dialect, expression, "t") for _, expression in keys]
    sums = [f"SUM({_expression(dialect, expression, 't')})" for _, expression in counts]
    numbers = ", ".join(str(number) for number in range(1, len(groups) + 1))
    where = f" WHERE {condition.format(r='t')}" if condition else ""
    return (
        f"INSERT INTO {tally} ({', '.join(names)}) SELECT {', '.join(groups + sums)} "
        f"FROM {table} t{where} GROUP BY {numbers}"
    )


def _changed(tally, distinct):
    watched = TALLIES[tally][4]
    return " OR ".join(f"OLD.{column} {distinct} NEW.{column}" for column in watched)


# The first order code of an order whose outcome is not "otp" (the owner asked for a code
# on a held order) makes it an order that needed a code.
FIRST_ORDER_CODE = (
    "NEW.purpose = 'order' AND NEW.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
    "otp_challenges c WHERE c.order_id = NEW.order_id AND c.purpose = 'order' AND c.id <> NEW.id)"
)


def _needed_code_moves(dialect):
    hour = HOUR[dialect].format(r="o", at="created_at")
    moves = []
    for needed, sign in (("false", -1), ("true", 1)):
        flag = {"false": "0", "true": "1"}[needed] if dialect == "sqlite" else needed
        moves.append(
            "INSERT INTO order_tallies (hour, status, outcome, needed_code, verified, orders, "
            f"value_minor) SELECT {hour}, o.status, COALESCE(o.risk_outcome, ''), {flag}, "
            f"(o.step_up_verified_at IS NOT NULL), {sign}, {sign} * o.total_minor FROM orders o "
            "WHERE o.id = NEW.order_id AND COALESCE(o.risk_outcome, '') <> 'otp'"
        )
    return moves


def _create_tally_triggers(dialect):
    """One set of triggers per tally, named after it: insert +1, delete -1, update -1/+1."""
    if dialect == "sqlite":
        for tally, (table, _, _, _, watched, _) in TALLIES.items():
            op.execute(
                f"CREATE TRIGGER {tally}_on_insert AFTER INSERT ON {table} "
                f"BEGIN {_append(dialect, tally, 'NEW', 1)}; END"
            )
            op.execute(
                f"CREATE TRIGGER {tally}_on_delete AFTER DELETE ON {table} "
                f"BEGIN {_append(dialect, tally, 'OLD', -1)}; END"
            )
            op.execute(
                f"CREATE TRIGGER {tally}_on_update AFTER UPDATE OF {', '.join(watched)} "
                f"ON {table} WHEN {_changed(tally, 'IS NOT')} BEGIN "
                f"{_append(dialect, tally, 'OLD', -1)}; {_append(dialect, tally, 'NEW', 1)}; END"
            )
        moves = "; ".join(_needed_code_moves(dialect))
        op.execute(
            "CREATE TRIGGER otp_challenges_order_needed_code AFTER INSERT ON otp_challenges "
            f"WHEN {FIRST_ORDER_CODE} BEGIN {moves}; END"
        )
        return
    for tally, (table, _, _, _, watched, _) in TALLIES.items():
        op.execute(
            f"CREATE FUNCTION count_{tally}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP <> 'INSERT' THEN {_append(dialect, tally, 'OLD', -1)}; END IF; "
            f"IF TG_OP <> 'DELETE' THEN {_append(dialect, tally, 'NEW', 1)}; END IF; "
            "RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_insert_delete AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION count_{tally}()"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_update AFTER UPDATE OF {', '.join(watched)} "
            f"ON {table} FOR EACH ROW WHEN ({_changed(tally, 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION count_{tally}()"
        )
    moves = "; ".join(_needed_code_moves(dialect))
    op.execute(
        "CREATE FUNCTION count_order_needed_code() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF {FIRST_ORDER_CODE} THEN {moves}; END IF; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER otp_challenges_order_needed_code AFTER INSERT ON otp_challenges "
        "FOR EACH ROW EXECUTE FUNCTION count_order_needed_code()"
    )


def _drop_tally_triggers(dialect):
    if dialect == "sqlite":
        op.execute("DROP TRIGGER otp_challenges_order_needed_code")
        for tally in TALLIES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {tally}_on_{event}")
        return
    op.execute("DROP TRIGGER otp_challenges_order_needed_code ON otp_challenges")
    op.execute("DROP FUNCTION count_order_needed_code()")
    for tally, (table, *_) in TALLIES.items():
        op.execute(f"DROP TRIGGER {tally}_on_update ON {table}")
        op.execute(f"DROP TRIGGER {tally}_on_insert_delete ON {table}")
        op.execute(f"DROP FUNCTION count_{tally}()")


def _create_tallies():
    op.create_table(
        "order_tallies",
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("needed_code", sa.Boolean(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tallies")),
    )
    op.create_table(
        "sms_tallies",
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_tallies")),
    )
    op.create_table(
        "code_tallies",
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("codes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_tallies")),
    )
    op.create_table(
        "spend_tallies",
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spend_tallies")),
    )
    for tally in TALLIES:
        op.create_index(f"ix_{tally}_hour", tally, ["hour"])
    op.create_table(
        "decision_inputs",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("account_age_seconds", sa.Double(), nullable=False),
        sa.Column("previous_orders", sa.Integer(), nullable=False),
        sa.Column("orders_24h", sa.Integer(), nullable=False),
        sa.Column("amount_24h_minor", sa.BigInteger(), nullable=False),
        sa.Column("device_known", sa.Boolean(), nullable=False),
        sa.Column("address_known", sa.Boolean(), nullable=False),
        sa.Column("phone_changed_seconds", sa.Double(), nullable=True),
        sa.Column("orders_since_otp", sa.Integer(), nullable=False),
        sa.Column("amount_since_otp_minor", sa.BigInteger(), nullable=False),
        sa.Column("step_up_locked", sa.Boolean(), nullable=False),
        sa.Column("has_passkey", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_decision_inputs_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_decision_inputs")),
    )
    op.create_index("ix_decision_inputs_decided_at", "decision_inputs", ["decided_at", "order_id"])


def _naive_utc(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _parsed(data, key):
    return _naive_utc(data[key]) if data.get(key) else None


def _seconds_before(at, then):
    return None if then is None else (at - then).total_seconds()


def _backfill_decision_inputs():
    """The inputs each past order recorded as JSON, as columns (a batch at a time)."""
    bind = op.get_bind()
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer()),
        sa.column("risk_inputs", sa.Text()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    inputs = sa.table("decision_inputs", *(sa.column(name) for name in (
        "order_id", "decided_at", "total_minor", "account_age_seconds", "previous_orders",
        "orders_24h", "amount_24h_minor", "device_known", "address_known",
        "phone_changed_seconds", "orders_since_otp", "amount_since_otp_minor", "step_up_locked",
        "has_passkey",
    )))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(orders.c.id, orders.c.risk_inputs, orders.c.created_at)
            .where(orders.c.id > last, orders.c.risk_inputs.is_not(None))
            .order_by(orders.c.id)
            .limit(5000)
        ).all()
        if not rows:
            return
        batch = []
        for order_id, raw, created_at in rows:
            data = json.loads(raw)
            at = _naive_utc(created_at)
            batch.append({
                "order_id": order_id,
                "decided_at": created_at,
                "total_minor": data["total_minor"],
                "account_age_seconds": _seconds_before(at, _parsed(data, "account_created_at")),
                "previous_orders": data["previous_orders"],
                "orders_24h": data["orders_24h"],
                "amount_24h_minor": data["amount_24h_minor"],
                "device_known": bool(data["device_known"]),
                "address_known": bool(data["address_known"]),
                "phone_changed_seconds": _seconds_before(at, _parsed(data, "phone_changed_at")),
                "orders_since_otp": data["orders_since_otp"],
                "amount_since_otp_minor": data["amount_since_otp_minor"],
                "step_up_locked": bool(data.get("step_up_locked", False)),
                "has_passkey": bool(data.get("has_passkey", False)),
            })
        bind.execute(inputs.insert(), batch)
        last = rows[-1][0]


def _where(condition):
    if condition is None:
        return {}
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade():
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('catalog_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stock_version', sa.Integer(), server_default='0', nullable=False))

    if dialect == "postgresql":
        with op.get_context().autocommit_block():
            for table, name, columns, condition in INDEXES:
                op.create_index(name, table, columns, postgresql_concurrently=True, **_where(condition))
            op.drop_index("ix_sms_messages_due", table_name="sms_messages", postgresql_concurrently=True)
    else:
        for table, name, columns, condition in INDEXES:
            op.create_index(name, table, columns, **_where(condition))
        op.drop_index("ix_sms_messages_due", table_name="sms_messages")

    _create_tallies()
    for tally in TALLIES:
        op.execute(_backfill(dialect, tally))
    _create_tally_triggers(dialect)
    _backfill_decision_inputs()

    if dialect == "sqlite":
        op.execute("DROP TRIGGER products_update_bumps_catalog_version")
        op.execute(
            f"CREATE TRIGGER products_edit_bumps_catalog_version "
            f"AFTER UPDATE OF {EDITED_COLUMNS} ON products BEGIN {BUMP_VERSION}; END"
        )
        op.execute(
            f"CREATE TRIGGER products_stock_bumps_stock_version "
            f"AFTER UPDATE OF stock ON products BEGIN {BUMP_STOCK}; END"
        )
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER products_bump_catalog_version ON products")
        op.execute(
            "CREATE CONSTRAINT TRIGGER products_bump_catalog_version "
            f"AFTER INSERT OR DELETE OR UPDATE OF {EDITED_COLUMNS} ON products "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()"
        )
        op.execute(
            "CREATE FUNCTION bump_stock_version() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP_STOCK}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE CONSTRAINT TRIGGER products_bump_stock_version "
            "AFTER UPDATE OF stock ON products "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_stock_version()"
        )
    else:
        raise NotImplementedError(f"no catalog version triggers for {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER products_stock_bumps_stock_version")
        op.execute("DROP TRIGGER products_edit_bumps_catalog_version")
        op.execute(
            "CREATE TRIGGER products_update_bumps_catalog_version "
            f"AFTER UPDATE ON products BEGIN {BUMP_VERSION}; END"
        )
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER products_bump_stock_version ON products")
        op.execute("DROP FUNCTION bump_stock_version()")
        op.execute("DROP TRIGGER products_bump_catalog_version ON products")
        op.execute(
            "CREATE CONSTRAINT TRIGGER products_bump_catalog_version "
            "AFTER INSERT OR UPDATE OR DELETE ON products "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()"
        )

    _drop_tally_triggers(dialect)
    op.drop_index("ix_decision_inputs_decided_at", table_name="decision_inputs")
    op.drop_table("decision_inputs")
    for tally in TALLIES:
        op.drop_index(f"ix_{tally}_hour", table_name=tally)
        op.drop_table(tally)

    op.create_index("ix_sms_messages_due", "sms_messages", ["status", "next_attempt_at"])
    for table, name, _columns, condition in reversed(INDEXES):
        op.drop_index(name, table_name=table, **_where(condition))

    if dialect == "sqlite":
        # Not batch mode: copying the table would trip over the triggers that name it.
        op.execute("ALTER TABLE catalog_version DROP COLUMN stock_version")
    else:
        op.drop_column('catalog_version', 'stock_version')
