"""indexes for a long history; stock changes apart from the catalog version

Revision ID: 540ec029f4ee
Revises: e6745a8df021
Create Date: 2026-11-26 00:24:11.957775

- Partial indexes that hold only the rows the delivery worker looks for every round, so
  that a round costs the same with millions of past messages and orders: the outbox
  (queued or being sent, by when due), queued messages by expiry, readable console copies
  by expiry, pending orders by expiry. They replace `ix_sms_messages_due` (status,
  next_attempt_at), whose `status` prefix made the claim scan and sort every queued row.
- `otp_challenges (sms_id)`: `flask sms prune` lets go of old messages there, and deleting a
  message makes the database look for rows that still name it.
- `catalog_version.stock_version`: the triggers on `products` now bump `version` when a
  product is added, removed or edited, and `stock_version` when only its stock changes, so
  that an order no longer makes every web process render its catalog pages again.

On PostgreSQL the indexes on the big tables are built CONCURRENTLY, outside the migration's
transaction: a shop with a long history keeps taking orders and sending SMS meanwhile.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '540ec029f4ee'
down_revision = 'e6745a8df021'
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
)

BUMP_VERSION = "UPDATE catalog_version SET version = version + 1 WHERE id = 1"
BUMP_STOCK = "UPDATE catalog_version SET stock_version = stock_version + 1 WHERE id = 1"
EDITED_COLUMNS = "id, name, description, price_minor, currency"


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

    op.create_index("ix_sms_messages_due", "sms_messages", ["status", "next_attempt_at"])
    for table, name, _columns, condition in reversed(INDEXES):
        op.drop_index(name, table_name=table, **_where(condition))

    if dialect == "sqlite":
        # Not batch mode: copying the table would trip over the triggers that name it.
        op.execute("ALTER TABLE catalog_version DROP COLUMN stock_version")
    else:
        op.drop_column('catalog_version', 'stock_version')
