"""The index behind ``GET /api/v1/transcriptions``: an account's transcriptions in the
listing's order, (created_at, id), so each page is one range scan whatever the account's size.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transcriptions_account_created_id", "transcriptions",
                    ["account_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_transcriptions_account_created_id", table_name="transcriptions")
