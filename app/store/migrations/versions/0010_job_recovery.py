"""Job recovery: the RQ job last enqueued for a transcription and when, its worker's last
sign of life, how many workers it lost, and an index on status for the recovery passes
(app/transcriptions/recovery.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("transcriptions") as batch:
        batch.add_column(sa.Column("queue_job_id", sa.String(60), nullable=True))
        batch.add_column(sa.Column("enqueued_at", TZ, nullable=True))
        batch.add_column(sa.Column("heartbeat_at", TZ, nullable=True))
        batch.add_column(sa.Column("worker_losses", sa.Integer, nullable=False,
                                   server_default="0"))
    op.create_index("ix_transcriptions_status", "transcriptions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_transcriptions_status", "transcriptions")
    with op.batch_alter_table("transcriptions") as batch:
        batch.drop_column("worker_losses")
        batch.drop_column("heartbeat_at")
        batch.drop_column("enqueued_at")
        batch.drop_column("queue_job_id")
