"""order timelines, the owner's review, shop settings, owner alerts

Revision ID: 8ed4989ab4fc
Revises: 74f5257f060d
Create Date: 2026-11-26 00:03:07.314987

- `order_events`: one row per thing that happened to an order (its timeline), with the
  owner's note where there is one.
- `orders.reviewed_at`/`reviewed_by_id`: the owner's decision on a held order; an index on
  (status, created_at) for the review queue and the sweep of orders held too long.
- `sms_messages.order_id`: the order a message is about, and an index on `sent_at` for the
  provider spend per hour and day.
- `otp_challenges.country` (the destination's country, for the SMS console) and an index on
  `created_at`; `audit_events` indexed by account for the owner's account page.
- `users.step_up_unlocked_at` (an owner lifted the wrong-code lock) and
  `users.alert_order_held` (an owner's opt-in to an SMS per held order).
- `shop_settings`: the owner's settings over the environment's defaults, versioned;
  `owner_alerts`: alarms raised to the owners (SMS abuse), one per kind and hour.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8ed4989ab4fc'
down_revision = '74f5257f060d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('owner_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('figure', sa.String(length=32), nullable=False),
    sa.Column('threshold', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_owner_alerts')),
    sa.UniqueConstraint('key', name=op.f('uq_owner_alerts_key'))
    )
    with op.batch_alter_table('owner_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_owner_alerts_raised_at'), ['raised_at'], unique=False)

    op.create_table('shop_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_shop_settings_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_settings'))
    )
    op.create_table('order_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_order_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.create_index('ix_order_events_order_id_id', ['order_id', 'id'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_user_id_id', ['user_id', 'id'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_orders_status_created_at', ['status', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_reviewed_by_id_users'), 'users', ['reviewed_by_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.create_index('ix_otp_challenges_created_at', ['created_at'], unique=False)

    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_sms_messages_sent_at', ['sent_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_sms_messages_order_id_orders'), 'orders', ['order_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_up_unlocked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('alert_order_held', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('alert_order_held')
        batch_op.drop_column('step_up_unlocked_at')

    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sms_messages_order_id_orders'), type_='foreignkey')
        batch_op.drop_index('ix_sms_messages_sent_at')
        batch_op.drop_column('order_id')

    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_otp_challenges_created_at')
        batch_op.drop_column('country')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_reviewed_by_id_users'), type_='foreignkey')
        batch_op.drop_index('ix_orders_status_created_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('reviewed_at')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_user_id_id')

    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index('ix_order_events_order_id_id')

    op.drop_table('order_events')
    op.drop_table('shop_settings')
    with op.batch_alter_table('owner_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_owner_alerts_raised_at'))

    op.drop_table('owner_alerts')
