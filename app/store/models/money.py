"""The money: wallets, the ledger and reservations (``app/billing/wallet/`` is their only
writer)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models.base import Base, utcnow


class LedgerKind(enum.StrEnum):
    """Why money moved; every change of a balance is one ledger entry of one of these."""

    #: The monthly credit granted at the start of a calendar month (positive, pocket credit).
    CREDIT_GRANT = "credit_grant"
    #: Monthly credit left unused when its month ended (negative, pocket credit).
    CREDIT_EXPIRY = "credit_expiry"
    #: Money the operator added to the top-up balance (positive, pocket topup).
    TOPUP = "topup"
    #: A finished transcription paid for (negative; one entry per pocket it drew on).
    CHARGE = "charge"
    #: A charge given back by the operator (positive).
    REFUND = "refund"
    #: An operator's correction, either sign.
    ADJUSTMENT = "adjustment"


class Pocket(enum.StrEnum):
    """The two balances of a wallet; spending draws on ``credit`` first, then ``topup``."""

    CREDIT = "credit"
    TOPUP = "topup"


class ReservationStatus(enum.StrEnum):
    """``held`` → ``charged`` (the job completed) or ``released`` (it failed or was
    cancelled); an operator may later turn ``charged`` into ``refunded``. Each change is a
    conditional UPDATE from the status before, so it happens once however often it is tried."""

    HELD = "held"
    CHARGED = "charged"
    RELEASED = "released"
    REFUNDED = "refunded"


class Wallet(Base):
    """An account's money, cached from the ledger (``voxhook wallet audit`` proves they agree).

    Amounts are micro-dollars. ``held_*`` is the part of each balance promised to running
    jobs; what can be spent is ``credit + topup - held_credit - held_topup``. The CHECK
    constraints make a negative balance, or a hold larger than its balance, impossible even
    for a buggy writer.
    """

    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("credit_micro_usd >= held_credit_micro_usd", name="ck_wallets_credit"),
        CheckConstraint("topup_micro_usd >= held_topup_micro_usd", name="ck_wallets_topup"),
        CheckConstraint("held_credit_micro_usd >= 0 AND held_topup_micro_usd >= 0",
                        name="ck_wallets_held"),
        CheckConstraint("monthly_credit_micro_usd >= 0", name="ck_wallets_monthly_credit"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    #: What is granted at the start of every calendar month (UTC); unused credit expires.
    monthly_credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The month (``YYYY-MM``, UTC) of the last grant; None until the first one.
    credit_period: Mapped[str | None] = mapped_column(String(7))
    #: Monthly credit left this period (held part included).
    credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    held_credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    held_topup_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One change of one balance (signed micro-dollars); never updated, never deleted.

    ``transcription_id`` has no foreign key, so deleting a transcription keeps the money
    history. The unique constraint makes a second charge (or refund) of one transcription
    from one pocket impossible at the database level; NULL ids (grants, top-ups) never
    collide.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("transcription_id", "kind", "pocket",
                         name="uq_ledger_transcription_kind_pocket"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    pocket: Mapped[str] = mapped_column(String(8))
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    transcription_id: Mapped[str | None] = mapped_column(String(40))
    #: The key whose job it was (charges, refunds): spend per key.
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    #: The month (``YYYY-MM``) a grant or expiry belongs to.
    period: Mapped[str | None] = mapped_column(String(7))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(Base):
    """Money held for one transcription from when its cost is known until it ends.

    The split between the pockets is decided when it is made (credit first) and charged or
    released exactly as made. ``credit_period`` is the month whose credit it holds: credit
    released after that month ended expires instead of returning.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("from_credit_micro_usd >= 0 AND from_topup_micro_usd >= 0 AND "
                        "amount_micro_usd = from_credit_micro_usd + from_topup_micro_usd",
                        name="ck_reservations_split"),
        Index("ix_reservations_account_id_status", "account_id", "status"),
    )

    transcription_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    from_credit_micro_usd: Mapped[int] = mapped_column(BigInteger)
    from_topup_micro_usd: Mapped[int] = mapped_column(BigInteger)
    credit_period: Mapped[str | None] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default=ReservationStatus.HELD)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
