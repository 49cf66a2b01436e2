"""step-up tallies: step-ups by hour, purpose, factors offered and factor that answered

Revision ID: b7d41c9e2a05
Revises: 3c1d2e7f9a40
Create Date: 2026-11-26

The dashboard's figures per factor counted the latest 2,000 order step-ups of the week (a
busy week holds some 20,000): bounded, but a sample, and the dashboard's slowest statement.
Triggers now keep them as the other tallies are kept (migration 540ec029f4ee): exact, and
the same cost whatever the length of the history.
"""

import sqlalchemy as sa
from alembic import op

revision = "b7d41c9e2a05"
down_revision = "3c1d2e7f9a40"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOUR = {
    "sqlite": "CAST(strftime('%s', {r}.created_at) AS INTEGER) / 3600",
    "postgresql": "floor(extract(epoch FROM {r}.created_at) / 3600)::bigint",
}
WATCHED = ("purpose", "factors", "factor")


def _append(dialect, row, sign):
    """INSERT of the tally row for `row` (NEW or OLD) counted `sign` times."""
    hour = HOUR[dialect].format(r=row)
    return (
        "INSERT INTO step_up_tallies (hour, purpose, factors, factor, step_ups) "
        f"SELECT {hour}, {row}.purpose, {row}.factors, COALESCE({row}.factor, ''), {sign}"
    )


def _changed(distinct):
    return " OR ".join(f"OLD.{column} {distinct} NEW.{column}" for column in WATCHED)


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        "step_up_tallies",
        sa.Column("id", ID, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("factors", sa.String(length=60), nullable=False),
        sa.Column("factor", sa.String(length=16), nullable=False),
        sa.Column("step_ups", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_up_tallies")),
    )
    op.create_index("ix_step_up_tallies_hour", "step_up_tallies", ["hour"])
    watched = ", ".join(WATCHED)
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER step_up_tallies_on_insert AFTER INSERT ON step_ups "
            f"BEGIN {_append(dialect, 'NEW', 1)}; END"
        )
        op.execute(
            "CREATE TRIGGER step_up_tallies_on_delete AFTER DELETE ON step_ups "
            f"BEGIN {_append(dialect, 'OLD', -1)}; END"
        )
        op.execute(
            f"CREATE TRIGGER step_up_tallies_on_update AFTER UPDATE OF {watched} ON step_ups "
            f"WHEN {_changed('IS NOT')} BEGIN {_append(dialect, 'OLD', -1)}; "
            f"{_append(dialect, 'NEW', 1)}; END"
        )
    else:
        _create_postgresql_triggers(watched)
    # Counted after the triggers exist: on PostgreSQL they hold step_ups until the migration
    # commits, so that a step-up written meanwhile waits and is counted by them, not lost.
    hour = HOUR[dialect].format(r="s")
    op.execute(
        "INSERT INTO step_up_tallies (hour, purpose, factors, factor, step_ups) "
        f"SELECT {hour}, s.purpose, s.factors, COALESCE(s.factor, ''), COUNT(*) "
        "FROM step_ups s GROUP BY 1, 2, 3, 4"
    )


def _create_postgresql_triggers(watched):
    op.execute(
        "CREATE FUNCTION count_step_up_tallies() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_append('postgresql', 'OLD', -1)}; END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_append('postgresql', 'NEW', 1)}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER step_up_tallies_on_insert_delete AFTER INSERT OR DELETE ON step_ups "
        "FOR EACH ROW EXECUTE FUNCTION count_step_up_tallies()"
    )
    op.execute(
        f"CREATE TRIGGER step_up_tallies_on_update AFTER UPDATE OF {watched} ON step_ups "
        f"FOR EACH ROW WHEN ({_changed('IS DISTINCT FROM')}) "
        "EXECUTE FUNCTION count_step_up_tallies()"
    )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER step_up_tallies_on_{event}")
    else:
        op.execute("DROP TRIGGER step_up_tallies_on_update ON step_ups")
        op.execute("DROP TRIGGER step_up_tallies_on_insert_delete ON step_ups")
        op.execute("DROP FUNCTION count_step_up_tallies()")
    op.drop_index("ix_step_up_tallies_hour", table_name="step_up_tallies")
    op.drop_table("step_up_tallies")
