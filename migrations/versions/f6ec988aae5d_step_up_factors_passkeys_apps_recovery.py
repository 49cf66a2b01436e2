"""step-up factors: passkeys, authenticator apps, recovery codes, step-ups

Revision ID: f6ec988aae5d
Revises: e6745a8df021
Create Date: 2026-11-26 02:24:33.184142

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f6ec988aae5d'
down_revision = 'e6745a8df021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('authenticator_apps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_authenticator_apps_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authenticator_apps')),
    sa.UniqueConstraint('user_id', name=op.f('uq_authenticator_apps_user_id'))
    )
    op.create_table('passkeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('transports', sa.String(length=200), nullable=False),
    sa.Column('backed_up', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_passkeys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id'))
    )
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.create_index('ix_passkeys_user_id', ['user_id'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hmac', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index('ix_recovery_codes_user_id', ['user_id'], unique=False)

    op.create_table('step_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('binding', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('factors', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('webauthn_nonce', sa.String(length=64), nullable=True),
    sa.Column('webauthn_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('factor', sa.String(length=16), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_step_ups_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_step_ups_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_step_ups')),
    sa.UniqueConstraint('public_id', name=op.f('uq_step_ups_public_id'))
    )
    with op.batch_alter_table('step_ups', schema=None) as batch_op:
        batch_op.create_index('ix_step_ups_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_step_ups_order_id', ['order_id'], unique=False)
        batch_op.create_index('ix_step_ups_user_purpose', ['user_id', 'purpose'], unique=False)
        batch_op.create_index('uq_step_ups_one_live', ['user_id', 'purpose'], unique=True, sqlite_where=sa.text('consumed_at IS NULL AND ended_at IS NULL'), postgresql_where=sa.text('consumed_at IS NULL AND ended_at IS NULL'))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_up_factor', sa.String(length=16), nullable=True))

    with op.batch_alter_table('otp_failures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('factor', sa.String(length=16), server_default='sms', nullable=False))
        batch_op.alter_column('challenge_id',
               existing_type=sa.INTEGER(),
               nullable=True)

    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stepped_up_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    # Failures of the factors beyond SMS have no code row to point at.
    op.execute("DELETE FROM otp_failures WHERE challenge_id IS NULL")
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_column('stepped_up_at')

    with op.batch_alter_table('otp_failures', schema=None) as batch_op:
        batch_op.alter_column('challenge_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('factor')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('step_up_factor')

    with op.batch_alter_table('step_ups', schema=None) as batch_op:
        batch_op.drop_index('uq_step_ups_one_live', sqlite_where=sa.text('consumed_at IS NULL AND ended_at IS NULL'), postgresql_where=sa.text('consumed_at IS NULL AND ended_at IS NULL'))
        batch_op.drop_index('ix_step_ups_user_purpose')
        batch_op.drop_index('ix_step_ups_order_id')
        batch_op.drop_index('ix_step_ups_created_at')

    op.drop_table('step_ups')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_recovery_codes_user_id')

    op.drop_table('recovery_codes')
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.drop_index('ix_passkeys_user_id')

    op.drop_table('passkeys')
    op.drop_table('authenticator_apps')
