"""tallies by five minutes at a window's edge

Revision ID: d5b8e2f41a6c
Revises: c2e8f6a1d3b7
Create Date: 2026-11-26

A figure "since <moment>" is read from the hourly tallies and corrected by the rows between
the moment and the nearest hour boundary, counted directly: up to half an hour of rows, which
grows with the shop's traffic (at a million orders a month, some 1,300 messages a window).
Now that part is read from tallies by five minutes, and only the rows between the moment and
the nearest five-minute mark are counted directly (at most two and a half minutes of them):

- the triggers of `order_tallies`, `sms_tallies`, `code_tallies`, `refusal_tallies` and
  `step_up_tallies` also write the five-minute slot (`slot`: whole five minutes since the
  Unix epoch, UTC) of the row they count;
- folding them (`shop.tallies.compact`) keeps the hours as before (`slot` NULL) and adds the
  same counts by slot to `order_slot_tallies`, `sms_slot_tallies`, ... (kept eight days);
- the slot tallies are counted here from the existing rows.

On PostgreSQL the triggers' functions are replaced in the migration's transaction; on SQLite
the triggers are made again. Stop the delivery processes while it runs: an older one folding
the tallies would drop the slots.
"""

import sqlalchemy as sa
from alembic import op

revision = "d5b8e2f41a6c"
down_revision = "c2e8f6a1d3b7"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOUR = {
    "sqlite": "CAST(strftime('%s', {r}.{at}) AS INTEGER) / 3600",
    "postgresql": "floor(extract(epoch FROM {r}.{at}) / 3600)::bigint",
}
SLOT = {
    "sqlite": "CAST(strftime('%s', {r}.{at}) AS INTEGER) / 300",
    "postgresql": "floor(extract(epoch FROM {r}.{at}) / 300)::bigint",
}
NEEDED_CODE = (
    "(COALESCE({r}.risk_outcome, '') = 'otp' OR EXISTS (SELECT 1 FROM otp_challenges c "
    "WHERE c.order_id = {r}.id AND c.purpose = 'order'))"
)
# tally: (counted table, the time its hour is of, [(key column, expression, type)],
# [(count column, expression)], columns whose change moves a row between tallies), as
# migrations 540ec029f4ee and c2e8f6a1d3b7 left them.
TALLIES = {
    "order_tallies": (
        "orders",
        "created_at",
        [
            ("status", "{r}.status", sa.String(length=24)),
            ("outcome", "COALESCE({r}.risk_outcome, '')", sa.String(length=8)),
            ("needed_code", NEEDED_CODE, sa.Boolean()),
            ("verified", "({r}.step_up_verified_at IS NOT NULL)", sa.Boolean()),
        ],
        [("orders", "1"), ("value_minor", "{r}.total_minor")],
        ["status", "risk_outcome", "step_up_verified_at", "total_minor"],
    ),
    "sms_tallies": (
        "sms_messages",
        "created_at",
        [
            ("status", "{r}.status", sa.String(length=16)),
            ("sent", "({r}.sent_at IS NOT NULL)", sa.Boolean()),
        ],
        [("messages", "1")],
        ["status", "sent_at"],
    ),
    "code_tallies": (
        "otp_challenges",
        "created_at",
        [
            ("purpose", "{r}.purpose", sa.String(length=16)),
            ("consumed", "({r}.consumed_at IS NOT NULL)", sa.Boolean()),
            ("country", "COALESCE({r}.country, '')", sa.String(length=2)),
        ],
        [("codes", "1")],
        ["purpose", "consumed_at", "country"],
    ),
    "refusal_tallies": (
        "sms_refusals",
        "at",
        [
            ("reason", "{r}.reason", sa.String(length=32)),
            ("country", "COALESCE({r}.country, '')", sa.String(length=2)),
        ],
        [("refusals", "1")],
        ["reason", "country", "at"],
    ),
    "step_up_tallies": (
        "step_ups",
        "created_at",
        [
            ("purpose", "{r}.purpose", sa.String(length=16)),
            ("factors", "{r}.factors", sa.String(length=60)),
            ("factor", "COALESCE({r}.factor, '')", sa.String(length=16)),
        ],
        [("step_ups", "1")],
        ["purpose", "factors", "factor"],
    ),
}
# The first order code of an order whose outcome is not "otp" (the owner asked for a code
# on a held order) makes it an order that needed a code.
FIRST_ORDER_CODE = (
    "NEW.purpose = 'order' AND NEW.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
    "otp_challenges c WHERE c.order_id = NEW.order_id AND c.purpose = 'order' AND c.id <> NEW.id)"
)


def slot_table(tally: str) -> str:
    return tally.replace("_tallies", "_slot_tallies")


def _append(dialect, tally, row, sign, slots):
    """INSERT of the tally row for `row` (NEW or OLD) counted `sign` times, with its slot
    when `slots`."""
    _, at, keys, counts, _ = TALLIES[tally]
    names = ["hour", *(["slot"] if slots else []), *(name for name, *_ in keys)]
    values = [HOUR[dialect].format(r=row, at=at)]
    values += [SLOT[dialect].format(r=row, at=at)] if slots else []
    values += [expression.format(r=row) for _, expression, _ in keys]
    names += [name for name, _ in counts]
    values += [f"{sign} * {expression.format(r=row)}" for _, expression in counts]
    return f"INSERT INTO {tally} ({', '.join(names)}) SELECT {', '.join(values)}"


def _needed_code_moves(dialect, slots):
    """The order's tally rows moved from "no code needed" to "needed one"."""
    hour = HOUR[dialect].format(r="o", at="created_at")
    slot = SLOT[dialect].format(r="o", at="created_at")
    moves = []
    for needed, sign in (("false", -1), ("true", 1)):
        flag = {"false": "0", "true": "1"}[needed] if dialect == "sqlite" else needed
        moves.append(
            f"INSERT INTO order_tallies (hour, {'slot, ' if slots else ''}status, outcome, "
            f"needed_code, verified, orders, value_minor) SELECT {hour}, "
            f"{slot + ', ' if slots else ''}o.status, COALESCE(o.risk_outcome, ''), {flag}, "
            f"(o.step_up_verified_at IS NOT NULL), {sign}, {sign} * o.total_minor FROM orders o "
            "WHERE o.id = NEW.order_id AND COALESCE(o.risk_outcome, '') <> 'otp'"
        )
    return "; ".join(moves)


def _sqlite_triggers(slots):
    """Drops the triggers and makes them again, writing slots or not (SQLite cannot
    replace a trigger)."""
    op.execute("DROP TRIGGER otp_challenges_order_needed_code")
    for tally, (table, _, _, _, watched) in TALLIES.items():
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {tally}_on_{event}")
        changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in watched)
        op.execute(
            f"CREATE TRIGGER {tally}_on_insert AFTER INSERT ON {table} "
            f"BEGIN {_append('sqlite', tally, 'NEW', 1, slots)}; END"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_delete AFTER DELETE ON {table} "
            f"BEGIN {_append('sqlite', tally, 'OLD', -1, slots)}; END"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_update AFTER UPDATE OF {', '.join(watched)} "
            f"ON {table} WHEN {changed} BEGIN {_append('sqlite', tally, 'OLD', -1, slots)}; "
            f"{_append('sqlite', tally, 'NEW', 1, slots)}; END"
        )
    op.execute(
        "CREATE TRIGGER otp_challenges_order_needed_code AFTER INSERT ON otp_challenges "
        f"WHEN {FIRST_ORDER_CODE} BEGIN {_needed_code_moves('sqlite', slots)}; END"
    )


def _postgresql_functions(slots):
    """The triggers' functions replaced, writing slots or not (the triggers stay)."""
    for tally in TALLIES:
        op.execute(
            f"CREATE OR REPLACE FUNCTION count_{tally}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF TG_OP <> 'INSERT' THEN "
            f"{_append('postgresql', tally, 'OLD', -1, slots)}; END IF; "
            f"IF TG_OP <> 'DELETE' THEN {_append('postgresql', tally, 'NEW', 1, slots)}; "
            "END IF; RETURN NULL; END $$"
        )
    op.execute(
        "CREATE OR REPLACE FUNCTION count_order_needed_code() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN IF {FIRST_ORDER_CODE} THEN "
        f"{_needed_code_moves('postgresql', slots)}; END IF; RETURN NULL; END $$"
    )


def _count_slots(dialect, tally):
    """The slot tally counted from the rows there are."""
    table, at, keys, counts, _ = TALLIES[tally]
    names = ["slot", *(name for name, *_ in keys), *(name for name, _ in counts)]
    groups = [SLOT[dialect].format(r="t", at=at), *(e.format(r="t") for _, e, _ in keys)]
    sums = [f"SUM({expression.format(r='t')})" for _, expression in counts]
    numbers = ", ".join(str(number) for number in range(1, len(groups) + 1))
    op.execute(
        f"INSERT INTO {slot_table(tally)} ({', '.join(names)}) "
        f"SELECT {', '.join(groups + sums)} FROM {table} t GROUP BY {numbers}"
    )


def upgrade():
    dialect = op.get_bind().dialect.name
    for tally, (_, _, keys, counts, _) in TALLIES.items():
        op.add_column(tally, sa.Column("slot", sa.BigInteger(), nullable=True))
        op.create_table(
            slot_table(tally),
            sa.Column("id", ID, nullable=False),
            sa.Column("slot", sa.BigInteger(), nullable=False),
            *(sa.Column(name, kind, nullable=False) for name, _, kind in keys),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name, _ in counts),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{slot_table(tally)}")),
        )
        op.create_index(f"ix_{slot_table(tally)}_slot", slot_table(tally), ["slot"])
    if dialect == "sqlite":
        _sqlite_triggers(slots=True)
    else:
        _postgresql_functions(slots=True)
    for tally in TALLIES:
        _count_slots(dialect, tally)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_triggers(slots=False)
    else:
        _postgresql_functions(slots=False)
    for tally in TALLIES:
        op.drop_index(f"ix_{slot_table(tally)}_slot", table_name=slot_table(tally))
        op.drop_table(slot_table(tally))
        op.drop_column(tally, "slot")
