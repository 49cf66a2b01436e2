"""catalog version bumped by triggers on products

Revision ID: 81afa3148d98
Revises: 4aa643e9e27b
Create Date: 2026-11-22 03:00:00.000000

Every web process caches the rendered product grid keyed by `catalog_version.version`. The
triggers bump it in the same transaction as any insert, update or delete on `products`, so
that no path (checkout, restock, an edit in a shell or in SQL) can leave a stale grid.

On PostgreSQL the trigger is a deferred constraint trigger: the bump runs at commit, after
the transaction's product rows are locked, so that two checkouts never deadlock on the
version row. SQLite has one writer at a time, so an ordinary trigger is enough there.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '81afa3148d98'
down_revision = '4aa643e9e27b'
branch_labels = None
depends_on = None

BUMP = "UPDATE catalog_version SET version = version + 1 WHERE id = 1"
EVENTS = ("insert", "update", "delete")


def upgrade():
    table = op.create_table('catalog_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_version'))
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER products_{event}_bumps_catalog_version "
                f"AFTER {event.upper()} ON products BEGIN {BUMP}; END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE CONSTRAINT TRIGGER products_bump_catalog_version "
            "AFTER INSERT OR UPDATE OR DELETE ON products "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()"
        )
    else:
        raise NotImplementedError(f"no catalog version triggers for {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER products_{event}_bumps_catalog_version")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER products_bump_catalog_version ON products")
        op.execute("DROP FUNCTION bump_catalog_version()")
    op.drop_table('catalog_version')
