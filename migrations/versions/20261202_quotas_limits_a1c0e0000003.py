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


def upgrade():
    pass  # placeholder: filled in by its feature


def downgrade():
    pass
