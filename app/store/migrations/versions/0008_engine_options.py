"""``transcriptions.engine_options``: how the speech engine is to run for this request,
beyond the pipeline: the task (``translate`` to English), an initial prompt, a sampling
temperature, and reference clips naming known speakers. Set by the OpenAI-compatible
surface; NULL for everything else (the pipeline's own settings apply).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transcriptions") as batch:
        batch.add_column(sa.Column("engine_options", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcriptions") as batch:
        batch.drop_column("engine_options")
