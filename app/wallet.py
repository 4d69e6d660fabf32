"""The wallet: monthly credit, top-up balance, money held for running jobs, and the ledger.

Why it is built this way:

- **Every change of money is a ledger entry** (:class:`~app.models.LedgerKind`); the cached
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

Exceptions::

    WalletError
    ├── UnknownAccount          (also LookupError) no such account
    ├── InvalidAmount           (also ValueError) malformed, negative, too precise, too large,
    │                           or a top-up below the minimum
    ├── InsufficientFunds       available < required (reserve, or an adjustment below zero)
    └── WalletContention        too many concurrent changes in a row (should never happen)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Table, and_, delete, insert, select, update
from sqlalchemy.orm import Session

from app.db import Database
from app.models import (
    Account,
    LedgerEntry,
    LedgerKind,
    Pocket,
    Reservation,
    ReservationStatus,
    Wallet,
    utcnow,
)

if TYPE_CHECKING:
    from app.wallet_audit import AuditReport

MICRO_USD_PER_USD = 1_000_000
#: The smallest top-up (SPEC.md section 3): 5.00 USD.
MIN_TOPUP_MICRO_USD = 5 * MICRO_USD_PER_USD
#: The largest amount of one operation (1,000,000 USD): a typo, not a payment, beyond that.
MAX_AMOUNT_MICRO_USD = 1_000_000 * MICRO_USD_PER_USD
#: How often an operation re-reads and retries after a concurrent change made it stale.
MAX_ATTEMPTS = 100

_W: Table = Wallet.__table__  # type: ignore[assignment]
_L: Table = LedgerEntry.__table__  # type: ignore[assignment]
_R: Table = Reservation.__table__  # type: ignore[assignment]


class WalletError(Exception):
    """Something about money that the caller (CLI, admin API, worker) reports to a person."""


class UnknownAccount(WalletError, LookupError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account {account_id!r}; `voxhook accounts list` shows them")
        self.account_id = account_id


class InvalidAmount(WalletError, ValueError):
    """An amount that cannot be used; the message names it and says what is accepted."""


class InsufficientFunds(WalletError):
    """Not enough money: ``available_micro_usd`` is there, ``required_micro_usd`` is needed."""

    def __init__(self, available_micro_usd: int, required_micro_usd: int,
                 message: str | None = None) -> None:
        super().__init__(message or (
            f"The balance is too low: {format_usd(available_micro_usd)} USD available, "
            f"{format_usd(required_micro_usd)} USD needed."))
        self.available_micro_usd = available_micro_usd
        self.required_micro_usd = required_micro_usd


class WalletContention(WalletError, RuntimeError):
    """An operation lost the race against concurrent changes :data:`MAX_ATTEMPTS` times."""


# --------------------------------------------------------------------------- amounts


def parse_usd(text: str, *, what: str = "usd", allow_negative: bool = False) -> int:
    """``"5.00"`` -> 5_000_000 micro-dollars, exactly, or :class:`InvalidAmount`.

    At most 6 decimal places that are not zero (the smallest unit is 0.000001 USD); never via
    a float. ``what`` names the field or option in the message.
    """
    example = "e.g. \"5.00\"" if not allow_negative else "e.g. \"5.00\" or \"-1.25\""
    if not isinstance(text, str):
        raise InvalidAmount(f"{what} must be an amount in US dollars written as a string, "
                            f"{example}, not {text!r}")
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidAmount(f"{what} must be an amount in US dollars, {example}, "
                            f"not {text!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"{what} must be a finite amount in US dollars, {example}")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + exponent > 15:  # >= 1e15 USD: refuse before building a huge integer
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}")
    coefficient = int("".join(map(str, digits)))
    shift = exponent + 6
    if shift >= 0:
        micro = coefficient * 10**shift
    else:
        micro, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise InvalidAmount(f"{what} has more than 6 decimal places ({text.strip()}); the "
                                "smallest unit is 0.000001 USD")
    if sign and micro:
        if not allow_negative:
            raise InvalidAmount(f"{what} must not be negative ({text.strip()})")
        micro = -micro
    if abs(micro) > MAX_AMOUNT_MICRO_USD:
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}")
    return micro


def format_usd(micro_usd: int) -> str:
    """5_000_000 -> ``"5.00"``, 6667 -> ``"0.006667"``: exact, at least two decimals."""
    whole, fraction = divmod(abs(micro_usd), MICRO_USD_PER_USD)
    decimals = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{'-' if micro_usd < 0 else ''}{whole}.{decimals}"


def period_of(now: datetime) -> str:
    """The calendar month (UTC) of ``now`` as ``YYYY-MM``: the credit period it belongs to."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC).strftime("%Y-%m")


def _check_amount(amount: int, what: str, *, minimum: int = 0) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"{what} must be a whole number of micro-dollars, not {amount!r}")
    if amount < minimum:
        raise InvalidAmount(f"{what} must be at least {format_usd(minimum)} USD, "
                            f"not {format_usd(amount)} USD")
    if amount > MAX_AMOUNT_MICRO_USD:
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}"
                            " USD")


# --------------------------------------------------------------------------- balances


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
    _check_amount(monthly_credit_micro_usd, "the monthly credit")
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


# --------------------------------------------------------------------------- jobs


def reserve(session: Session, account_id: str, api_key_id: str | None, transcription_id: str,
            amount_micro_usd: int, now: datetime | None = None) -> Reservation:
    """Hold a job's cost, from the monthly credit first, then from the top-up balance.

    Raises :class:`InsufficientFunds` (holding nothing) when less is available. Idempotent
    per transcription: a repeat returns the reservation there is, whatever its status. An
    amount of 0 makes a reservation that holds nothing.
    """
    _check_amount(amount_micro_usd, "the amount to reserve")
    now = now or utcnow()
    wallet = _refresh(session, account_id, now)
    existing = _reservation(session, transcription_id)
    if existing is not None:
        return _reservation_object(session, transcription_id)
    from_credit, from_topup = _split(wallet, amount_micro_usd)
    if not _insert_ignore(session, _R, {
            "transcription_id": transcription_id, "account_id": account_id,
            "api_key_id": api_key_id, "amount_micro_usd": amount_micro_usd,
            "from_credit_micro_usd": from_credit, "from_topup_micro_usd": from_topup,
            "credit_period": wallet.credit_period, "status": ReservationStatus.HELD,
            "created_at": now}):
        return _reservation_object(session, transcription_id)  # a concurrent reserve won
    for _ in range(MAX_ATTEMPTS):
        held = session.execute(update(_W).where(
            _W.c.account_id == account_id,
            _W.c.credit_period == wallet.credit_period,
            _W.c.credit_micro_usd - _W.c.held_credit_micro_usd >= from_credit,
            _W.c.topup_micro_usd - _W.c.held_topup_micro_usd >= from_topup,
        ).values(held_credit_micro_usd=_W.c.held_credit_micro_usd + from_credit,
                 held_topup_micro_usd=_W.c.held_topup_micro_usd + from_topup, updated_at=now))
        if held.rowcount == 1:
            return _reservation_object(session, transcription_id)
        wallet = _refresh(session, account_id, now)  # what we read went stale
        try:
            from_credit, from_topup = _split(wallet, amount_micro_usd)
        except InsufficientFunds:
            session.execute(delete(_R).where(_R.c.transcription_id == transcription_id))
            raise
        session.execute(update(_R).where(_R.c.transcription_id == transcription_id).values(
            from_credit_micro_usd=from_credit, from_topup_micro_usd=from_topup,
            credit_period=wallet.credit_period))
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")


def charge(session: Session, transcription_id: str, now: datetime | None = None) -> int:
    """Charge a held reservation, exactly as held; returns the amount charged.

    Runs in the caller's transaction (store the job's result in the same one). Returns 0 and
    changes nothing when there is no reservation or it is no longer held (charged already,
    or released), so retries and concurrent callers charge once.
    """
    now = now or utcnow()
    reservation = _settle(session, transcription_id, ReservationStatus.HELD,
                          ReservationStatus.CHARGED, now)
    if reservation is None:
        return 0
    account_id = reservation.account_id
    _refresh(session, account_id, now)
    from_credit, from_topup = (reservation.from_credit_micro_usd,
                               reservation.from_topup_micro_usd)
    spent = session.execute(update(_W).where(
        _W.c.account_id == account_id,
        _W.c.held_credit_micro_usd >= from_credit,
        _W.c.held_topup_micro_usd >= from_topup,
    ).values(credit_micro_usd=_W.c.credit_micro_usd - from_credit,
             held_credit_micro_usd=_W.c.held_credit_micro_usd - from_credit,
             topup_micro_usd=_W.c.topup_micro_usd - from_topup,
             held_topup_micro_usd=_W.c.held_topup_micro_usd - from_topup, updated_at=now))
    if spent.rowcount != 1:
        raise WalletError(f"the wallet of {account_id} holds less than reservation "
                          f"{transcription_id}; run `voxhook wallet audit`")
    for pocket, part in ((Pocket.CREDIT, from_credit), (Pocket.TOPUP, from_topup)):
        if part:
            _record(session, account_id, LedgerKind.CHARGE, pocket, -part, now,
                    transcription_id=transcription_id, api_key_id=reservation.api_key_id,
                    period=reservation.credit_period if pocket == Pocket.CREDIT else None)
    return reservation.amount_micro_usd


def release(session: Session, transcription_id: str, now: datetime | None = None) -> int:
    """Give a held reservation back (the job failed or was cancelled); returns the amount.

    Idempotent: 0 when there is nothing held. Credit held from a month that has ended
    expires instead of coming back, as it would have had the job never run.
    """
    now = now or utcnow()
    reservation = _settle(session, transcription_id, ReservationStatus.HELD,
                          ReservationStatus.RELEASED, now)
    if reservation is None:
        return 0
    account_id = reservation.account_id
    from_credit, from_topup = (reservation.from_credit_micro_usd,
                               reservation.from_topup_micro_usd)
    for _ in range(MAX_ATTEMPTS):
        wallet = _refresh(session, account_id, now)
        expired = from_credit if reservation.credit_period != wallet.credit_period else 0
        released = session.execute(update(_W).where(
            _W.c.account_id == account_id,
            _W.c.credit_period == wallet.credit_period,
            _W.c.held_credit_micro_usd >= from_credit,
            _W.c.held_topup_micro_usd >= from_topup,
        ).values(held_credit_micro_usd=_W.c.held_credit_micro_usd - from_credit,
                 held_topup_micro_usd=_W.c.held_topup_micro_usd - from_topup,
                 credit_micro_usd=_W.c.credit_micro_usd - expired, updated_at=now))
        if released.rowcount == 1:
            if expired:
                _record(session, account_id, LedgerKind.CREDIT_EXPIRY, Pocket.CREDIT,
                        -expired, now, transcription_id=transcription_id,
                        period=reservation.credit_period,
                        note=f"monthly credit of {reservation.credit_period} held by a job "
                             "that did not complete")
            return reservation.amount_micro_usd
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")


def release_for_retry(session: Session, transcription_id: str,
                      now: datetime | None = None) -> int:
    """Release a job's hold and forget its reservation, because the job goes back to the
    queue (its worker died or stopped); returns the amount released.

    The next attempt reserves afresh once it knows the cost again, so a queued job holds
    nothing. Only a released reservation is forgotten: one that was charged (the job
    completed after all) stays, and with it the proof of the charge. Holds are not money
    movements, so forgetting one leaves the ledger whole.
    """
    released = release(session, transcription_id, now)
    session.execute(delete(_R).where(_R.c.transcription_id == transcription_id,
                                     _R.c.status == ReservationStatus.RELEASED))
    return released


def refund(session: Session, transcription_id: str, now: datetime | None = None,
           note: str | None = None) -> int:
    """Give a charged transcription's cost back (an operator's decision); returns it.

    Each part goes back to the pocket it came from, except monthly credit of a month that has
    ended, which goes to the top-up balance (credit put back into a finished month would
    expire at once). Idempotent: 0 when the transcription is not charged.
    """
    now = now or utcnow()
    reservation = _settle(session, transcription_id, ReservationStatus.CHARGED,
                          ReservationStatus.REFUNDED, now)
    if reservation is None:
        return 0
    account_id = reservation.account_id
    for _ in range(MAX_ATTEMPTS):
        wallet = _refresh(session, account_id, now)
        to_credit = reservation.from_credit_micro_usd
        to_topup = reservation.from_topup_micro_usd
        if reservation.credit_period != wallet.credit_period:
            to_credit, to_topup = 0, to_credit + to_topup
        refunded = session.execute(update(_W).where(
            _W.c.account_id == account_id, _W.c.credit_period == wallet.credit_period,
        ).values(credit_micro_usd=_W.c.credit_micro_usd + to_credit,
                 topup_micro_usd=_W.c.topup_micro_usd + to_topup, updated_at=now))
        if refunded.rowcount == 1:
            for pocket, part in ((Pocket.CREDIT, to_credit), (Pocket.TOPUP, to_topup)):
                if part:
                    _record(session, account_id, LedgerKind.REFUND, pocket, part, now,
                            transcription_id=transcription_id,
                            api_key_id=reservation.api_key_id, note=note,
                            period=wallet.credit_period if pocket == Pocket.CREDIT else None)
            return reservation.amount_micro_usd
    raise WalletContention(f"the wallet of {account_id} kept changing; try again")


# --------------------------------------------------------------------------- operators


def topup(session: Session, account_id: str, amount_micro_usd: int,
          now: datetime | None = None, note: str | None = None) -> Balances:
    """Add money to the top-up balance; at least :data:`MIN_TOPUP_MICRO_USD` (5.00 USD)."""
    _check_amount(amount_micro_usd, "a top-up", minimum=MIN_TOPUP_MICRO_USD)
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
    _check_amount(abs(amount_micro_usd), "an adjustment")
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
    _check_amount(amount_micro_usd, "the monthly credit")
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


# --------------------------------------------------------------------------- audit


def audit(db: Database) -> AuditReport:
    """Prove that the balances follow from the ledger (:mod:`app.wallet_audit` checks)."""
    from app.wallet_audit import audit_wallets

    return audit_wallets(db)


# --------------------------------------------------------------------------- internals


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


def _split(wallet: Row[Any], amount: int) -> tuple[int, int]:
    """(from credit, from top-up) for ``amount``: the credit first."""
    free_credit = wallet.credit_micro_usd - wallet.held_credit_micro_usd
    free_topup = wallet.topup_micro_usd - wallet.held_topup_micro_usd
    if free_credit + free_topup < amount:
        raise InsufficientFunds(free_credit + free_topup, amount)
    from_credit = min(amount, free_credit)
    return from_credit, amount - from_credit


def _reservation(session: Session, transcription_id: str) -> Row[Any] | None:
    return session.execute(select(_R).where(_R.c.transcription_id == transcription_id)).first()


def _reservation_object(session: Session, transcription_id: str) -> Reservation:
    return session.execute(select(Reservation)
                           .where(Reservation.transcription_id == transcription_id)
                           .execution_options(populate_existing=True)).scalar_one()


def _settle(session: Session, transcription_id: str, from_status: str, to_status: str,
            now: datetime) -> Row[Any] | None:
    """Move a reservation from ``from_status`` to ``to_status`` if it is still there; the
    one caller whose UPDATE matched owns the change. None for everyone else."""
    moved = session.execute(update(_R).where(
        and_(_R.c.transcription_id == transcription_id, _R.c.status == from_status),
    ).values(status=to_status, settled_at=now))
    return _reservation(session, transcription_id) if moved.rowcount == 1 else None


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
