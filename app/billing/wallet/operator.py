"""What the operator does to a wallet (CLI and admin API): top up, adjust, set the monthly
credit, read the latest ledger entries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.store.models import (
    LedgerEntry,
    LedgerKind,
    Pocket,
    utcnow,
)

if TYPE_CHECKING:
    pass
from app.billing.money import (
    InsufficientFunds,
    InvalidAmount,
    WalletContention,
    check_amount,
    format_usd,
)
from app.billing.pricing import MICRO_USD_PER_USD
from app.billing.wallet.balances import (
    _W,
    MAX_ATTEMPTS,
    Balances,
    _record,
    _refresh,
    balances,
)

#: The smallest top-up (SPEC.md section 3): 5.00 USD.
MIN_TOPUP_MICRO_USD = 5 * MICRO_USD_PER_USD


def topup(session: Session, account_id: str, amount_micro_usd: int,
          now: datetime | None = None, note: str | None = None) -> Balances:
    """Add money to the top-up balance; at least :data:`MIN_TOPUP_MICRO_USD` (5.00 USD)."""
    check_amount(amount_micro_usd, "a top-up", minimum=MIN_TOPUP_MICRO_USD)
    now = now or utcnow()
    _refresh(session, account_id, now)
    session.execute(update(_W).where(_W.c.account_id == account_id).values(
        topup_micro_usd=_W.c.topup_micro_usd + amount_micro_usd, updated_at=now))
    _record(session, account_id, LedgerKind.TOPUP, Pocket.TOPUP, amount_micro_usd, now,
            note=note)
    return balances(session, account_id, now)


def adjust(session: Session, account_id: str, pocket: Pocket | str, amount_micro_usd: int,
           now: datetime | None = None, note: str | None = None) -> Balances:
    """An operator's correction of one pocket, either sign; never below what is held there
    (so never below zero): :class:`InsufficientFunds` says how much may be taken."""
    pocket = Pocket(pocket)
    if amount_micro_usd == 0:
        raise InvalidAmount("an adjustment of 0.00 USD changes nothing; give a positive or "
                            "negative amount")
    check_amount(abs(amount_micro_usd), "an adjustment")
    now = now or utcnow()
    balance, held = ((_W.c.credit_micro_usd, _W.c.held_credit_micro_usd)
                     if pocket == Pocket.CREDIT else
                     (_W.c.topup_micro_usd, _W.c.held_topup_micro_usd))
    for _ in range(MAX_ATTEMPTS):
        wallet = _refresh(session, account_id, now)
        free = wallet._mapping[balance.name] - wallet._mapping[held.name]
        if free + amount_micro_usd < 0:
            raise InsufficientFunds(free, -amount_micro_usd, (
                f"The {pocket} balance cannot go below what is held there: at most "
                f"{format_usd(free)} USD can be taken, not {format_usd(-amount_micro_usd)}."))
        adjusted = session.execute(update(_W).where(
            _W.c.account_id == account_id, _W.c.credit_period == wallet.credit_period,
            balance - held + amount_micro_usd >= 0,
        ).values({balance: balance + amount_micro_usd, _W.c.updated_at: now}))
        if adjusted.rowcount == 1:
            _record(session, account_id, LedgerKind.ADJUSTMENT, pocket, amount_micro_usd, now,
                    note=note,
                    period=wallet.credit_period if pocket == Pocket.CREDIT else None)
            return balances(session, account_id, now)
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")


def set_monthly_credit(session: Session, account_id: str, amount_micro_usd: int,
                       now: datetime | None = None) -> Balances:
    """Change the monthly credit, from this month on.

    This month is treated as if it had been granted the new amount, with what was spent so
    far counted against it: raising it by X adds X to this month's credit now, lowering it
    takes X back (never more than is left unheld). The difference is an ``adjustment``
    entry. Later months are granted the new amount.
    """
    check_amount(amount_micro_usd, "the monthly credit")
    now = now or utcnow()
    for _ in range(MAX_ATTEMPTS):
        wallet = _refresh(session, account_id, now)
        old = wallet.monthly_credit_micro_usd
        free = wallet.credit_micro_usd - wallet.held_credit_micro_usd
        change = max(amount_micro_usd - old, -free)
        changed = session.execute(update(_W).where(
            _W.c.account_id == account_id, _W.c.credit_period == wallet.credit_period,
            _W.c.monthly_credit_micro_usd == old,
            _W.c.credit_micro_usd - _W.c.held_credit_micro_usd + change >= 0,
        ).values(monthly_credit_micro_usd=amount_micro_usd,
                 credit_micro_usd=_W.c.credit_micro_usd + change, updated_at=now))
        if changed.rowcount == 1:
            if change:
                _record(session, account_id, LedgerKind.ADJUSTMENT, Pocket.CREDIT, change,
                        now, period=wallet.credit_period,
                        note=f"monthly credit changed from {format_usd(old)} to "
                             f"{format_usd(amount_micro_usd)} USD")
            return balances(session, account_id, now)
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")


def entries(session: Session, account_id: str, limit: int = 20) -> list[LedgerEntry]:
    """The account's latest ledger entries, newest first."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id)
                                .order_by(LedgerEntry.id.desc()).limit(limit)))
