"""The wallet: balances per account (``wallets``), every change of money (``ledger_entries``)
and money held for running transcriptions (``reservations``). Every existing account gets an
empty wallet.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
MONEY = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("monthly_credit_micro_usd", MONEY, nullable=False),
        sa.Column("credit_period", sa.String(7), nullable=True),
        sa.Column("credit_micro_usd", MONEY, nullable=False),
        sa.Column("topup_micro_usd", MONEY, nullable=False),
        sa.Column("held_credit_micro_usd", MONEY, nullable=False),
        sa.Column("held_topup_micro_usd", MONEY, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("credit_micro_usd >= held_credit_micro_usd", name="ck_wallets_credit"),
        sa.CheckConstraint("topup_micro_usd >= held_topup_micro_usd", name="ck_wallets_topup"),
        sa.CheckConstraint("held_credit_micro_usd >= 0 AND held_topup_micro_usd >= 0",
                           name="ck_wallets_held"),
        sa.CheckConstraint("monthly_credit_micro_usd >= 0", name="ck_wallets_monthly_credit"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pocket", sa.String(8), nullable=False),
        sa.Column("amount_micro_usd", MONEY, nullable=False),
        sa.Column("transcription_id", sa.String(40), nullable=True),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("transcription_id", "kind", "pocket",
                            name="uq_ledger_transcription_kind_pocket"),
    )
    op.create_index("ix_ledger_entries_account_id_id", "ledger_entries", ["account_id", "id"])
    op.create_table(
        "reservations",
        sa.Column("transcription_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("amount_micro_usd", MONEY, nullable=False),
        sa.Column("from_credit_micro_usd", MONEY, nullable=False),
        sa.Column("from_topup_micro_usd", MONEY, nullable=False),
        sa.Column("credit_period", sa.String(7), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("settled_at", TZ, nullable=True),
        sa.CheckConstraint("from_credit_micro_usd >= 0 AND from_topup_micro_usd >= 0 AND "
                           "amount_micro_usd = from_credit_micro_usd + from_topup_micro_usd",
                           name="ck_reservations_split"),
    )
    op.create_index("ix_reservations_account_id_status", "reservations",
                    ["account_id", "status"])
    # Every account there is (at least acct_default, from 0001) starts with an empty wallet.
    op.get_bind().execute(
        sa.text("INSERT INTO wallets (account_id, monthly_credit_micro_usd, credit_period, "
                "credit_micro_usd, topup_micro_usd, held_credit_micro_usd, "
                "held_topup_micro_usd, updated_at) "
                "SELECT id, 0, NULL, 0, 0, 0, 0, :now FROM accounts"
                ).bindparams(sa.bindparam("now", datetime.now(UTC), type_=TZ)))


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("ledger_entries")
    op.drop_table("wallets")
