"""Dashboard sessions: a signed-in browser of /dashboard, held server-side.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("operator_fingerprint", sa.String(64), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("notices", sa.JSON, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_api_key_id", "dashboard_sessions", ["api_key_id"])
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_expires_at", "dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_api_key_id", "dashboard_sessions")
    op.drop_table("dashboard_sessions")
