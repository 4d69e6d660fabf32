"""The wallet: monthly credit, top-up balance, money held for running jobs, and the ledger.

Why it is built this way:

- **Every change of money is a ledger entry** (:class:`~app.store.models.LedgerKind`); the cached
  balances in ``wallets`` change in the same transaction, and :func:`audit` proves that the
  ledger's sums and the cache agree. Amounts are integer micro-dollars (1e-6 USD); dollars
  appear only at the edges, as exact decimal strings (:func:`parse_usd`, :func:`format_usd`).
- **Two pockets.** The monthly credit is granted at the start of each calendar month (UTC)
  and what is left of it expires at the end; the top-up balance is what the operator added
  and never expires. Spending draws on the credit first, then on the top-up balance.
- **Reserve, then charge or release.** Once a job's duration (so its cost) is known,
  :func:`reserve` holds the cost, split between the pockets there and then. At completion
  :func:`charge` turns exactly that hold into charges, once; a failed or cancelled job's
  hold is given back by :func:`release`, so it costs nothing. Holds keep concurrent jobs
  from spending the same money: ``available = credit + topup - held``.
- **Concurrency without row locks.** Each change of a wallet is one conditional UPDATE whose
  WHERE clause states what must still hold (enough available, the same month, ...). SQLite
  runs one writer at a time and evaluates it under its write lock; PostgreSQL (READ
  COMMITTED) re-checks it against the newest row version after waiting for a concurrent
  writer. When it matches nothing because what we read went stale, we read again and retry.
  Status changes of a reservation are conditional the same way (``WHERE status = 'held'``),
  so only one caller ever charges or releases it. CHECK constraints (no negative balance,
  no hold above its balance) and a unique constraint (one charge per transcription and
  pocket) back this up in the database itself.
- **The caller's transaction.** Nothing here commits: the worker stores a job's result and
  its charge in one commit, so a crash leaves both or neither.
- **No billing switch here.** ``VOXHOOK_BILLING`` (``Settings.billing_enforced``) is the
  callers' business: with ``off`` they neither reserve nor charge.

How a job uses it: ``reserve`` once the cost is known (``InsufficientFunds``: fail the job with
``insufficient_balance``; a repeat returns the existing reservation, whatever its status, so
a retried job checks that it is still ``held``); ``charge`` in the transaction that stores the
result; ``release`` when it fails or is cancelled; ``release_for_retry`` when it goes back to
the queue (the retry reserves again). All are idempotent.

The package: ``balances`` (the wallet's row, the month's roll-over), ``holds`` (a job's
money), ``operator`` (top-ups, adjustments, the monthly credit); amounts and the errors are
:mod:`app.billing.money`, the audit :mod:`app.billing.audit`. Callers use the names below,
as ``wallet.reserve(...)``.

Every failure is a :class:`~app.billing.money.WalletError` (the hierarchy is in
:mod:`app.billing.money`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.billing.audit import audit_wallets
from app.billing.money import (
    MAX_AMOUNT_MICRO_USD,
    InsufficientFunds,
    InvalidAmount,
    UnknownAccount,
    WalletContention,
    WalletError,
    format_usd,
    parse_usd,
)
from app.billing.pricing import MICRO_USD_PER_USD
from app.billing.wallet.balances import (
    MAX_ATTEMPTS,
    Balances,
    balances,
    has_funds,
    open_wallet,
    period_of,
    refresh_month,
)
from app.billing.wallet.holds import charge, refund, release, release_for_retry, reserve, shrink
from app.billing.wallet.operator import (
    MIN_TOPUP_MICRO_USD,
    adjust,
    entries,
    set_monthly_credit,
    topup,
)

if TYPE_CHECKING:
    from app.billing.audit import AuditReport
    from app.store.db import Database

__all__ = [
    "MAX_AMOUNT_MICRO_USD", "MAX_ATTEMPTS", "MICRO_USD_PER_USD", "MIN_TOPUP_MICRO_USD",
    "Balances", "InsufficientFunds", "InvalidAmount", "UnknownAccount", "WalletContention",
    "WalletError", "adjust", "audit", "balances", "charge", "entries", "format_usd",
    "has_funds", "open_wallet", "parse_usd", "period_of", "refresh_month", "refund", "release",
    "release_for_retry",
    "reserve", "set_monthly_credit", "shrink", "topup",
]


def audit(db: Database) -> AuditReport:
    """Prove that the balances follow from the ledger (:mod:`app.billing.audit` checks)."""
    return audit_wallets(db)
