"""Direct uploads (the ``uploads`` table, ``transcriptions.upload_id``) and media kept after
a job for the retention time (``transcriptions.media_key`` / ``media_delete_after``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("storage_key", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("url_expires_at", TZ, nullable=False),
        sa.Column("uploaded_at", TZ, nullable=True),
        sa.Column("transcription_id", sa.String(40), nullable=True),
        sa.Column("delete_after", TZ, nullable=True),
    )
    op.create_index("ix_uploads_account_id", "uploads", ["account_id"])
    op.create_index("ix_uploads_delete_after", "uploads", ["delete_after"])
    with op.batch_alter_table("transcriptions") as batch:
        batch.add_column(sa.Column("upload_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("media_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("media_delete_after", TZ, nullable=True))
        batch.create_foreign_key("fk_transcriptions_upload_id", "uploads", ["upload_id"],
                                 ["id"])
        batch.create_index("ix_transcriptions_upload_id", ["upload_id"], unique=True)
        batch.create_index("ix_transcriptions_media_delete_after", ["media_delete_after"])


def downgrade() -> None:
    with op.batch_alter_table("transcriptions") as batch:
        batch.drop_index("ix_transcriptions_media_delete_after")
        batch.drop_index("ix_transcriptions_upload_id")
        batch.drop_constraint("fk_transcriptions_upload_id", type_="foreignkey")
        batch.drop_column("media_delete_after")
        batch.drop_column("media_key")
        batch.drop_column("upload_id")
    op.drop_table("uploads")
