"""teacher test questions and their runs

Revision ID: a1c0e0000002
Revises: a1c0e0000001
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'a1c0e0000002'
down_revision = 'a1c0e0000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('test_question',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('expected_file', sa.String(length=255), nullable=False),
    sa.Column('expected_page', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_test_question_bot_id_course_bot'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_question'))
    )
    with op.batch_alter_table('test_question', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_question_bot_id'), ['bot_id'], unique=False)

    op.create_table('test_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('stamp', sa.String(length=128), nullable=False),
    sa.Column('index_version', sa.Integer(), nullable=False),
    sa.Column('settings_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('questions_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('found_1', sa.Integer(), nullable=False),
    sa.Column('found_3', sa.Integer(), nullable=False),
    sa.Column('found_5', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('mrr', sa.Float(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_test_run_bot_id_course_bot'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_run')),
    sa.UniqueConstraint('bot_id', 'stamp', name=op.f('uq_test_run_bot_id_stamp'))
    )
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_run_bot_id'), ['bot_id'], unique=False)


def downgrade():
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_run_bot_id'))

    op.drop_table('test_run')
    with op.batch_alter_table('test_question', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_question_bot_id'))

    op.drop_table('test_question')
