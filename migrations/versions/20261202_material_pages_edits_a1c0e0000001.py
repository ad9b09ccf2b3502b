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
    pass  # placeholder: filled in by its feature


def downgrade():
    pass
