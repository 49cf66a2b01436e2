"""tallies of step-ups, of codes by destination country, of refusals

Revision ID: c2e8f6a1d3b7
Revises: 3c1d2e7f9a40
Create Date: 2026-11-26

The owner's figures that were still counted from the rows of a window now come from tallies
kept by triggers as the others are (migration 540ec029f4ee), exact and the same cost however
long the history or busy the day:
- step-ups by purpose, the factors offered and the factor that answered (the dashboard's
  figures per factor read the latest 2,000 order step-ups of the week);
- codes also by destination country, and refusals by reason and country (the SMS console's
  countries read the latest 2,000 codes and refusals, and its refusals by reason every
  refusal of the day: a count that grew with an attack, the moment the owner opens the page).

On PostgreSQL the migration's transaction holds the counted tables from the moment their
triggers are dropped or made (before each recount): a row written meanwhile waits and is then
counted by the new triggers, none is lost. Stop the delivery processes while it runs: an
older one folding the tallies would not know the new keys.
"""

import sqlalchemy as sa
from alembic import op

revision = "c2e8f6a1d3b7"
down_revision = "3c1d2e7f9a40"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOUR = {
    "sqlite": "CAST(strftime('%s', {r}.{at}) AS INTEGER) / 3600",
    "postgresql": "floor(extract(epoch FROM {r}.{at}) / 3600)::bigint",
}
# tally: (counted table, the time its hour is of, [(key column, expression)], count column,
# columns whose change moves a row between tallies)
CODES = (
    "otp_challenges",
    "created_at",
    [("purpose", "{r}.purpose"), ("consumed", "({r}.consumed_at IS NOT NULL)")],
    "codes",
    ["purpose", "consumed_at"],
)
CODES_BY_COUNTRY = (
    *CODES[:2],
    [*CODES[2], ("country", "COALESCE({r}.country, '')")],
    CODES[3],
    [*CODES[4], "country"],
)
STEP_UPS = (
    "step_ups",
    "created_at",
    [
        ("purpose", "{r}.purpose"),
        ("factors", "{r}.factors"),
        ("factor", "COALESCE({r}.factor, '')"),
    ],
    "step_ups",
    ["purpose", "factors", "factor"],
)
REFUSALS = (
    "sms_refusals",
    "at",
    [("reason", "{r}.reason"), ("country", "COALESCE({r}.country, '')")],
    "refusals",
    ["reason", "country", "at"],
)


def _append(dialect, tally, spec, row, sign):
    """INSERT of the tally row for `row` (NEW or OLD) counted `sign` times."""
    _, at, keys, count, _ = spec
    names = ["hour", *(name for name, _ in keys), count]
    values = [
        HOUR[dialect].format(r=row, at=at),
        *(expression.format(r=row) for _, expression in keys),
        str(sign),
    ]
    return f"INSERT INTO {tally} ({', '.join(names)}) SELECT {', '.join(values)}"


def _recount(dialect, tally, spec):
    table, at, keys, count, _ = spec
    names = ["hour", *(name for name, _ in keys), count]
    groups = [HOUR[dialect].format(r="t", at=at), *(e.format(r="t") for _, e in keys)]
    numbers = ", ".join(str(number) for number in range(1, len(groups) + 1))
    op.execute(f"DELETE FROM {tally}")
    op.execute(
        f"INSERT INTO {tally} ({', '.join(names)}) SELECT {', '.join(groups)}, COUNT(*) "
        f"FROM {table} t GROUP BY {numbers}"
    )


def _create_triggers(dialect, tally, spec):
    """As migration 540ec029f4ee's: insert +1, delete -1, update -1/+1."""
    table, _, _, _, watched = spec
    if dialect == "sqlite":
        changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in watched)
        op.execute(
            f"CREATE TRIGGER {tally}_on_insert AFTER INSERT ON {table} "
            f"BEGIN {_append(dialect, tally, spec, 'NEW', 1)}; END"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_delete AFTER DELETE ON {table} "
            f"BEGIN {_append(dialect, tally, spec, 'OLD', -1)}; END"
        )
        op.execute(
            f"CREATE TRIGGER {tally}_on_update AFTER UPDATE OF {', '.join(watched)} "
            f"ON {table} WHEN {changed} BEGIN {_append(dialect, tally, spec, 'OLD', -1)}; "
            f"{_append(dialect, tally, spec, 'NEW', 1)}; END"
        )
        return
    changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in watched)
    op.execute(
        f"CREATE FUNCTION count_{tally}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_append(dialect, tally, spec, 'OLD', -1)}; END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_append(dialect, tally, spec, 'NEW', 1)}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {tally}_on_insert_delete AFTER INSERT OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION count_{tally}()"
    )
    op.execute(
        f"CREATE TRIGGER {tally}_on_update AFTER UPDATE OF {', '.join(watched)} "
        f"ON {table} FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION count_{tally}()"
    )


def _drop_triggers(dialect, tally, table):
    if dialect == "sqlite":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {tally}_on_{event}")
        return
    op.execute(f"DROP TRIGGER {tally}_on_update ON {table}")
    op.execute(f"DROP TRIGGER {tally}_on_insert_delete ON {table}")
    op.execute(f"DROP FUNCTION count_{tally}()")


def _create_tally(dialect, tally, spec, key_columns):
    """The tally table, its hour index and triggers, then its count of the rows there."""
    op.create_table(
        tally,
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        *key_columns,
        sa.Column(spec[3], sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{tally}")),
    )
    op.create_index(f"ix_{tally}_hour", tally, ["hour"])
    _create_triggers(dialect, tally, spec)
    _recount(dialect, tally, spec)


def _drop_tally(dialect, tally, spec):
    _drop_triggers(dialect, tally, spec[0])
    op.drop_index(f"ix_{tally}_hour", table_name=tally)
    op.drop_table(tally)


def upgrade():
    dialect = op.get_bind().dialect.name
    _drop_triggers(dialect, "code_tallies", "otp_challenges")
    op.add_column(
        "code_tallies",
        sa.Column("country", sa.String(length=2), nullable=False, server_default=""),
    )
    _recount(dialect, "code_tallies", CODES_BY_COUNTRY)
    _create_triggers(dialect, "code_tallies", CODES_BY_COUNTRY)
    _create_tally(
        dialect,
        "refusal_tallies",
        REFUSALS,
        [
            sa.Column("reason", sa.String(length=32), nullable=False),
            sa.Column("country", sa.String(length=2), nullable=False),
        ],
    )
    _create_tally(
        dialect,
        "step_up_tallies",
        STEP_UPS,
        [
            sa.Column("purpose", sa.String(length=16), nullable=False),
            sa.Column("factors", sa.String(length=60), nullable=False),
            sa.Column("factor", sa.String(length=16), nullable=False),
        ],
    )


def downgrade():
    dialect = op.get_bind().dialect.name
    _drop_tally(dialect, "step_up_tallies", STEP_UPS)
    _drop_tally(dialect, "refusal_tallies", REFUSALS)
    _drop_triggers(dialect, "code_tallies", "otp_challenges")
    op.drop_column("code_tallies", "country")
    _recount(dialect, "code_tallies", CODES)
    _create_triggers(dialect, "code_tallies", CODES)
