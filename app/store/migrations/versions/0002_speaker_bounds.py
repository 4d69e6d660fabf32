"""Speaker bounds of a diarized transcription (v1 ``min_speakers`` / ``max_speakers``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transcriptions", sa.Column("min_speakers", sa.Integer(), nullable=True))
    op.add_column("transcriptions", sa.Column("max_speakers", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcriptions") as batch:
        batch.drop_column("max_speakers")
        batch.drop_column("min_speakers")
