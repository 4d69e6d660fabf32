"""A job's money: hold its cost (:func:`reserve`), then :func:`charge` or :func:`release` the
hold; an operator's :func:`refund` gives a charge back. All idempotent per transcription.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, delete, select, update
from sqlalchemy.orm import Session

from app.store.models import (
    LedgerKind,
    Pocket,
    Reservation,
    ReservationStatus,
    utcnow,
)

if TYPE_CHECKING:
    pass
from app.billing.money import InsufficientFunds, WalletContention, WalletError, check_amount
from app.billing.wallet.balances import _R, _W, MAX_ATTEMPTS, _insert_ignore, _record, _refresh


def reserve(session: Session, account_id: str, api_key_id: str | None, transcription_id: str,
            amount_micro_usd: int, now: datetime | None = None) -> Reservation:
    """Hold a job's cost, from the monthly credit first, then from the top-up balance.

    Raises :class:`InsufficientFunds` (holding nothing) when less is available. Idempotent
    per transcription: a repeat returns the reservation there is, whatever its status. An
    amount of 0 makes a reservation that holds nothing.
    """
    check_amount(amount_micro_usd, "the amount to reserve")
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


def shrink(session: Session, transcription_id: str, amount_micro_usd: int,
           now: datetime | None = None) -> int:
    """Lower a held reservation to ``amount_micro_usd`` before it is charged (a job that
    turned out to cost less than reserved: an AI analysis failed, and is not charged).

    What is let go goes back top-up first, so that the hold left is what reserving the
    smaller amount would have held (credit first). Runs in the caller's transaction, before
    :func:`charge`. Returns the amount let go: 0 when nothing is held, or the hold is not
    more than ``amount_micro_usd``.
    """
    check_amount(amount_micro_usd, "the amount to keep held")
    now = now or utcnow()
    held = session.execute(select(_R).where(_R.c.transcription_id == transcription_id,
                                            _R.c.status == ReservationStatus.HELD)).first()
    if held is None or held.amount_micro_usd <= amount_micro_usd:
        return 0
    excess = held.amount_micro_usd - amount_micro_usd
    from_topup = min(excess, held.from_topup_micro_usd)
    from_credit = excess - from_topup
    lowered = session.execute(update(_R).where(
        _R.c.transcription_id == transcription_id, _R.c.status == ReservationStatus.HELD,
        _R.c.amount_micro_usd == held.amount_micro_usd,
    ).values(amount_micro_usd=amount_micro_usd,
             from_credit_micro_usd=_R.c.from_credit_micro_usd - from_credit,
             from_topup_micro_usd=_R.c.from_topup_micro_usd - from_topup))
    if lowered.rowcount != 1:
        return 0  # charged, released or shrunk meanwhile: nothing of ours to let go
    let_go = session.execute(update(_W).where(
        _W.c.account_id == held.account_id,
        _W.c.held_credit_micro_usd >= from_credit,
        _W.c.held_topup_micro_usd >= from_topup,
    ).values(held_credit_micro_usd=_W.c.held_credit_micro_usd - from_credit,
             held_topup_micro_usd=_W.c.held_topup_micro_usd - from_topup, updated_at=now))
    if let_go.rowcount != 1:
        raise WalletError(f"the wallet of {held.account_id} holds less than reservation "
                          f"{transcription_id}; run `voxhook wallet audit`")
    return excess


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
