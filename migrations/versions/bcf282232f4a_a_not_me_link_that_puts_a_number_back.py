"""a not-me link that puts a number back

Revision ID: bcf282232f4a
Revises: d5b8e2f41a6c
Create Date: 2026-12-07

The "not me" link of a "phone number changed" alert keeps the number the alert was sent to,
the account's before the change (`not_me_links.restores_phone`): following it puts that
number back (`shop.accounts.lockdown`). Links made before this have none and only lock the
account down, as they did; they expire within a day.
"""

import sqlalchemy as sa
from alembic import op

revision = "bcf282232f4a"
down_revision = "d5b8e2f41a6c"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("not_me_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restores_phone", sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table("not_me_links", schema=None) as batch_op:
        batch_op.drop_column("restores_phone")
