"""bot settings, prompt versions and copy codes

Revision ID: b5e1c7d2a9f4
Revises: d4297d6a4503
Create Date: 2026-11-22 05:20:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = 'b5e1c7d2a9f4'
down_revision = 'd4297d6a4503'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bot_settings',
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('welcome_message', sa.Text(), nullable=False),
    sa.Column('system_prompt', sa.Text(), nullable=False),
    sa.Column('answer_language', sa.String(length=8), nullable=False),
    sa.Column('teaching_mode', sa.String(length=16), nullable=False),
    sa.Column('temperature', sa.Float(), nullable=False),
    sa.Column('max_answer_tokens', sa.Integer(), nullable=False),
    sa.Column('model_key', sa.String(length=120), nullable=False),
    sa.Column('uncovered_behaviour', sa.String(length=32), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('pause_message', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_bot_settings_bot_id_course_bot'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bot_id', name=op.f('pk_bot_settings'))
    )
    op.create_table('prompt_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_prompt_version_bot_id_course_bot'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_version'))
    )
    with op.batch_alter_table('prompt_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_version_bot_id'), ['bot_id'], unique=False)
    op.create_table('bot_copy_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_bot_copy_code_bot_id_course_bot'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_copy_code')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_bot_copy_code_code_hash'))
    )
    with op.batch_alter_table('bot_copy_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bot_copy_code_bot_id'), ['bot_id'], unique=False)


def downgrade():
    with op.batch_alter_table('bot_copy_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bot_copy_code_bot_id'))
    op.drop_table('bot_copy_code')
    with op.batch_alter_table('prompt_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_version_bot_id'))
    op.drop_table('prompt_version')
    op.drop_table('bot_settings')
