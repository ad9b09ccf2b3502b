"""answers record who wrote them: answer_kind (openai, local, extractive, fallback, refusal)

Revision ID: a1c0e0000004
Revises: a1c0e0000003
Create Date: 2026-12-02 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1c0e0000004'
down_revision = 'a1c0e0000003'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: answers stored before this revision keep NULL and are told apart by their model label as before.
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_kind', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('answer_kind')
