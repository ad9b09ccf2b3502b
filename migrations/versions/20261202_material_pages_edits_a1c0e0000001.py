"""material pages: exclusions and teacher edits

Revision ID: a1c0e0000001
Revises: d1dc2f0064a9
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'a1c0e0000001'
down_revision = 'd1dc2f0064a9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('material_page',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('locator', sa.String(length=16), nullable=False),
    sa.Column('heading', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('passages', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['material_id'], ['material.id'], name=op.f('fk_material_page_material_id_material'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_material_page')),
    sa.UniqueConstraint('material_id', 'number', name=op.f('uq_material_page_material_id_number'))
    )
    with op.batch_alter_table('material_page', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_material_page_material_id'), ['material_id'], unique=False)

    op.create_table('material_page_edit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('material_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.Column('replacement', sa.Text(), nullable=True),
    sa.Column('original_text', sa.Text(), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['course_bot.id'], name=op.f('fk_material_page_edit_bot_id_course_bot'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['material_id'], ['material.id'],
                            name=op.f('fk_material_page_edit_material_id_material'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_material_page_edit')),
    sa.UniqueConstraint('material_id', 'sha256', 'number', name=op.f('uq_material_page_edit_material_id_sha256_number'))
    )
    with op.batch_alter_table('material_page_edit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_material_page_edit_bot_id'), ['bot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_material_page_edit_material_id'), ['material_id'], unique=False)


def downgrade():
    with op.batch_alter_table('material_page_edit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_material_page_edit_material_id'))
        batch_op.drop_index(batch_op.f('ix_material_page_edit_bot_id'))

    op.drop_table('material_page_edit')
    with op.batch_alter_table('material_page', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_material_page_material_id'))

    op.drop_table('material_page')
