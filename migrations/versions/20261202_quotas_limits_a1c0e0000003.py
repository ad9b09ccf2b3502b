"""quotas per role, platform budgets, bot overrides, limit hits

Revision ID: a1c0e0000003
Revises: a1c0e0000002
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'a1c0e0000003'
down_revision = 'a1c0e0000002'
branch_labels = None
depends_on = None


def _limits():
    return [sa.Column('questions_per_day', sa.Integer(), nullable=True),
            sa.Column('tokens_per_day', sa.Integer(), nullable=True),
            sa.Column('burst_per_minute', sa.Integer(), nullable=True),
            sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False)]


def upgrade():
    op.create_table('quota_platform',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    *_limits(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_platform')),
    sa.UniqueConstraint('issuer', 'role', name=op.f('uq_quota_platform_issuer_role'))
    )
    op.create_table('quota_bot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    *_limits(),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_quota_bot_bot_id_course_bot'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_bot')),
    sa.UniqueConstraint('bot_id', 'role', name=op.f('uq_quota_bot_bot_id_role'))
    )
    op.create_table('quota_hit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('pseudonym', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_quota_hit_bot_id_course_bot'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_hit')),
    sa.UniqueConstraint('bot_id', 'day', 'pseudonym', 'code', name=op.f('uq_quota_hit_bot_id_day_pseudonym_code'))
    )
    with op.batch_alter_table('quota_hit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quota_hit_bot_id'), ['bot_id'], unique=False)


def downgrade():
    with op.batch_alter_table('quota_hit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_hit_bot_id'))
    op.drop_table('quota_hit')
    op.drop_table('quota_bot')
    op.drop_table('quota_platform')
