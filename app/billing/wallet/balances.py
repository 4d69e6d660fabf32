"""A wallet's row: its balances, the month's roll-over, and the internals the other wallet
modules share (the conditional UPDATE's reads, the ledger's INSERT, INSERT-unless-present).

The underscored helpers are this package's internals: ``holds`` and ``operator`` use them,
nothing outside ``app.billing.wallet`` should.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.orm import Session

from app.store.models import (
    Account,
    LedgerEntry,
    LedgerKind,
    Pocket,
    Reservation,
    Wallet,
    utcnow,
)

if TYPE_CHECKING:
    pass
from app.billing.money import UnknownAccount, WalletContention, check_amount

#: How often an operation re-reads and retries after a concurrent change made it stale.
MAX_ATTEMPTS = 100


_W: Table = Wallet.__table__  # type: ignore[assignment]


_L: Table = LedgerEntry.__table__  # type: ignore[assignment]


_R: Table = Reservation.__table__  # type: ignore[assignment]


def period_of(now: datetime) -> str:
    """The calendar month (UTC) of ``now`` as ``YYYY-MM``: the credit period it belongs to."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class Balances:
    """An account's wallet as it stands (micro-dollars)."""

    account_id: str
    #: The month (``YYYY-MM``, UTC) the monthly credit belongs to.
    period: str
    #: What is granted at the start of each month.
    monthly_credit: int
    #: Monthly credit left this month (the held part included).
    credit_remaining: int
    #: The top-up balance (the held part included).
    topup: int
    #: Parts of each balance held for running jobs.
    held_credit: int
    held_topup: int

    @property
    def held(self) -> int:
        return self.held_credit + self.held_topup

    @property
    def available(self) -> int:
        """What a new job may still reserve."""
        return self.credit_remaining + self.topup - self.held


def _balances(row: Row[Any]) -> Balances:
    return Balances(account_id=row.account_id, period=row.credit_period,
                    monthly_credit=row.monthly_credit_micro_usd,
                    credit_remaining=row.credit_micro_usd, topup=row.topup_micro_usd,
                    held_credit=row.held_credit_micro_usd, held_topup=row.held_topup_micro_usd)


def open_wallet(session: Session, account_id: str, monthly_credit_micro_usd: int = 0,
                now: datetime | None = None) -> Balances:
    """Give a new account its wallet; its first monthly credit is granted at once."""
    check_amount(monthly_credit_micro_usd, "the monthly credit")
    now = now or utcnow()
    _require_account(session, account_id)
    _insert_ignore(session, _W, _empty_wallet(account_id, now, monthly_credit_micro_usd))
    return _balances(_refresh(session, account_id, now))


def balances(session: Session, account_id: str, now: datetime | None = None) -> Balances:
    """The wallet now (the month rolled over first, when it has changed)."""
    return _balances(_refresh(session, account_id, now or utcnow()))


def has_funds(session: Session, account_id: str, now: datetime | None = None) -> bool:
    """Whether anything at all is available (the 402 at creation asks this)."""
    return balances(session, account_id, now).available > 0


def refresh_month(session: Session, account_id: str, now: datetime | None = None) -> Balances:
    """Roll the wallet into ``now``'s month if it is still in an earlier one (every
    operation here does this first); returns the balances after."""
    return _balances(_refresh(session, account_id, now or utcnow()))


def _refresh(session: Session, account_id: str, now: datetime) -> Row[Any]:
    """Roll the wallet into ``now``'s month if it is still in an earlier one; its row after.

    The credit left of the old month (but not the part held for running jobs, which those
    jobs still charge or release) expires, and the month's credit is granted. Months only
    move forward, so a process with a slightly slow clock cannot roll a wallet back; the
    UPDATE is conditional on the state read, so concurrent callers roll it once.
    """
    target = period_of(now)
    for _ in range(MAX_ATTEMPTS):
        wallet = _wallet(session, account_id, now)
        old = wallet.credit_period
        if old is not None and old >= target:
            return wallet
        rolled = session.execute(
            update(_W).where(
                _W.c.account_id == account_id,
                _W.c.credit_period.is_(None) if old is None else _W.c.credit_period == old,
                _W.c.credit_micro_usd == wallet.credit_micro_usd,
                _W.c.held_credit_micro_usd == wallet.held_credit_micro_usd,
                _W.c.monthly_credit_micro_usd == wallet.monthly_credit_micro_usd,
            ).values(credit_period=target, updated_at=now,
                     credit_micro_usd=wallet.held_credit_micro_usd
                     + wallet.monthly_credit_micro_usd))
        if rolled.rowcount != 1:
            continue
        unused = wallet.credit_micro_usd - wallet.held_credit_micro_usd
        if old is not None and unused:
            _record(session, account_id, LedgerKind.CREDIT_EXPIRY, Pocket.CREDIT, -unused,
                    now, period=old, note=f"monthly credit of {old} left unused")
        if wallet.monthly_credit_micro_usd:
            _record(session, account_id, LedgerKind.CREDIT_GRANT, Pocket.CREDIT,
                    wallet.monthly_credit_micro_usd, now, period=target,
                    note=f"monthly credit for {target}")
        return _wallet(session, account_id, now)
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")




def _empty_wallet(account_id: str, now: datetime, monthly: int = 0) -> dict[str, Any]:
    return {"account_id": account_id, "monthly_credit_micro_usd": monthly,
            "credit_period": None, "credit_micro_usd": 0, "topup_micro_usd": 0,
            "held_credit_micro_usd": 0, "held_topup_micro_usd": 0, "updated_at": now}


def _require_account(session: Session, account_id: str) -> None:
    if session.execute(select(Account.id).where(Account.id == account_id)).first() is None:
        raise UnknownAccount(account_id)


def _wallet(session: Session, account_id: str, now: datetime) -> Row[Any]:
    """The wallet's row as stored now (never a cached ORM object); made when missing (an
    account created before wallets, or by hand, gets an empty one)."""
    row = session.execute(select(_W).where(_W.c.account_id == account_id)).first()
    if row is None:
        _require_account(session, account_id)
        _insert_ignore(session, _W, _empty_wallet(account_id, now))
        row = session.execute(select(_W).where(_W.c.account_id == account_id)).one()
    return row


def _record(session: Session, account_id: str, kind: LedgerKind, pocket: Pocket, amount: int,
            now: datetime, **extra: Any) -> None:
    session.execute(insert(_L).values(account_id=account_id, kind=kind, pocket=pocket,
                                      amount_micro_usd=amount, created_at=now, **extra))


def _insert_ignore(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless the primary key exists (no error, no broken transaction); True when
    this call inserted the row."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the service supports these two
        raise NotImplementedError(f"the wallet does not support {dialect}")
    statement = (dialect_insert(table).values(values).on_conflict_do_nothing()
                 .returning(*table.primary_key.columns))  # rowcount is -1 here on psycopg
    return session.execute(statement).first() is not None
