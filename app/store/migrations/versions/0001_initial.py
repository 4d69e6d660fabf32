"""Accounts, API keys, transcriptions, idempotency records; the default account.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    accounts = op.create_table(
        "accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "transcriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("pipeline_code", sa.String(100), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("align", sa.Boolean, nullable=False),
        sa.Column("diarize", sa.Boolean, nullable=False),
        sa.Column("speaker_count", sa.Integer, nullable=True),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("audio_duration_seconds", sa.Float, nullable=True),
        sa.Column("cost_micro_usd", sa.BigInteger, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("worker_name", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("completed_at", TZ, nullable=True),
    )
    op.create_index("ix_transcriptions_account_id", "transcriptions", ["account_id"])
    op.create_index("ix_transcriptions_api_key_id", "transcriptions", ["api_key_id"])
    op.create_index("ix_transcriptions_created_at", "transcriptions", ["created_at"])
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer, nullable=False),
        sa.Column("response_body", sa.JSON, nullable=False),
        sa.Column(
            "transcription_id", sa.String(40), sa.ForeignKey("transcriptions.id"), nullable=True
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),
    )
    # Every installation starts with one account, so `voxhook keys create` works at once.
    op.bulk_insert(
        accounts,
        [{"id": "acct_default", "name": "Default account", "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("idempotency_records")
    op.drop_table("transcriptions")
    op.drop_table("api_keys")
    op.drop_table("accounts")
