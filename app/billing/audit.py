"""The wallet audit: proof that every balance follows from the ledger.

``voxhook wallet audit`` and ``GET /api/v1/admin/wallet/audit`` run it. It only reads, in one
snapshot (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so it can run
while jobs are being charged without reporting a change half seen. It repeats what the
database's own constraints already guarantee (nothing negative) because those could have been
dropped or bypassed by hand, and a money check should not trust what it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, select

from app.billing.money import format_usd
from app.store.db import Database
from app.store.models import LedgerEntry, LedgerKind, Pocket, Reservation, ReservationStatus, Wallet

_W: Table = Wallet.__table__  # type: ignore[assignment]
_L: Table = LedgerEntry.__table__  # type: ignore[assignment]
_R: Table = Reservation.__table__  # type: ignore[assignment]


@dataclass
class AuditReport:
    """What :func:`audit_wallets` checked and every disagreement it found (empty: all agree)."""

    wallets: int = 0
    entries: int = 0
    reservations: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counted = (f"{self.wallets} wallet(s), {self.entries} ledger entries, "
                   f"{self.reservations} reservation(s)")
        if self.ok:
            return f"OK: {counted}; the balances follow from the ledger."
        return f"{len(self.problems)} problem(s) in {counted}."


#: The sign every kind of entry must have: +1, -1, or 0 for either.
_SIGNS = {LedgerKind.CREDIT_GRANT: 1, LedgerKind.CREDIT_EXPIRY: -1, LedgerKind.TOPUP: 1,
          LedgerKind.CHARGE: -1, LedgerKind.REFUND: 1, LedgerKind.ADJUSTMENT: 0}


def audit_wallets(db: Database) -> AuditReport:
    """Prove that the balances follow from the ledger, in one consistent snapshot.

    Per wallet: the ledger's sum per pocket equals the cached balance, the held amounts equal
    the held reservations', nothing is negative and no hold exceeds its balance. Per
    reservation: its split adds up; a charged (or refunded) one has charges equal to its
    split, pocket by pocket (and refunds equal to its amount); a held or released one has
    none. Every charge and refund belongs to such a reservation of the same account, and
    every entry has its kind's sign.
    """
    report = AuditReport()
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # one read snapshot for every query below
        else:
            connection.execution_options(isolation_level="REPEATABLE READ")
        _audit_wallets(connection, report)
        _audit_reservations(connection, report)
    return report


def _audit_wallets(connection: Any, report: AuditReport) -> None:
    wallets = {row.account_id: row for row in connection.execute(select(_W))}
    report.wallets = len(wallets)
    sums: dict[tuple[str, str], int] = {}
    for row in connection.execute(
            select(_L.c.account_id, _L.c.pocket, func.count(), func.sum(_L.c.amount_micro_usd))
            .group_by(_L.c.account_id, _L.c.pocket)):
        report.entries += row[2]
        sums[(row.account_id, row.pocket)] = int(row[3])
        if row.account_id not in wallets:
            report.problems.append(f"{row.account_id}: ledger entries but no wallet")
        if row.pocket not in set(Pocket):
            report.problems.append(f"{row.account_id}: entries in unknown pocket {row.pocket!r}")
    held: dict[str, tuple[int, int]] = {
        row.account_id: (int(row[1]), int(row[2])) for row in connection.execute(
            select(_R.c.account_id, func.sum(_R.c.from_credit_micro_usd),
                   func.sum(_R.c.from_topup_micro_usd))
            .where(_R.c.status == ReservationStatus.HELD).group_by(_R.c.account_id))}
    for account_id, w in wallets.items():
        checks = (
            ("credit", w.credit_micro_usd, sums.get((account_id, Pocket.CREDIT), 0),
             w.held_credit_micro_usd, held.get(account_id, (0, 0))[0]),
            ("topup", w.topup_micro_usd, sums.get((account_id, Pocket.TOPUP), 0),
             w.held_topup_micro_usd, held.get(account_id, (0, 0))[1]),
        )
        for pocket, cached, ledger, cached_held, reserved in checks:
            if cached != ledger:
                report.problems.append(
                    f"{account_id}: {pocket} balance is {format_usd(cached)} USD but the "
                    f"ledger sums to {format_usd(ledger)} USD")
            if cached_held != reserved:
                report.problems.append(
                    f"{account_id}: {pocket} held is {format_usd(cached_held)} USD but held "
                    f"reservations sum to {format_usd(reserved)} USD")
            if cached < 0 or cached_held < 0 or cached_held > cached:
                report.problems.append(
                    f"{account_id}: {pocket} balance {format_usd(cached)} USD with "
                    f"{format_usd(cached_held)} USD held (negative, or more held than there is)")
        if w.monthly_credit_micro_usd < 0:
            report.problems.append(f"{account_id}: negative monthly credit")
    for row in connection.execute(select(_L.c.id, _L.c.kind, _L.c.amount_micro_usd)):
        sign = _SIGNS.get(row.kind)
        amount = row.amount_micro_usd
        if sign is None or amount == 0 or (sign and (amount > 0) != (sign > 0)):
            report.problems.append(f"ledger entry {row.id}: {row.kind} of "
                                   f"{format_usd(amount)} USD has the wrong kind or sign")


def _audit_reservations(connection: Any, report: AuditReport) -> None:
    moved: dict[tuple[str, str], dict[str, Any]] = {}
    for row in connection.execute(
            select(_L.c.transcription_id, _L.c.kind, _L.c.account_id, _L.c.pocket,
                   _L.c.amount_micro_usd)
            .where(_L.c.kind.in_([LedgerKind.CHARGE, LedgerKind.REFUND]))):
        entry = moved.setdefault((row.transcription_id, row.kind),
                                 {"account_id": row.account_id, Pocket.CREDIT: 0,
                                  Pocket.TOPUP: 0})
        entry[row.pocket] = entry.get(row.pocket, 0) + row.amount_micro_usd
        if entry["account_id"] != row.account_id:
            report.problems.append(f"{row.transcription_id}: {row.kind} entries of two accounts")
    for r in connection.execute(select(_R)):
        report.reservations += 1
        tid = r.transcription_id
        if (r.from_credit_micro_usd < 0 or r.from_topup_micro_usd < 0 or
                r.from_credit_micro_usd + r.from_topup_micro_usd != r.amount_micro_usd):
            report.problems.append(f"{tid}: reservation split does not add up")
        charged = moved.pop((tid, LedgerKind.CHARGE), None)
        refunded = moved.pop((tid, LedgerKind.REFUND), None)
        if r.status in (ReservationStatus.CHARGED, ReservationStatus.REFUNDED):
            got = charged or {"account_id": r.account_id, Pocket.CREDIT: 0, Pocket.TOPUP: 0}
            if (got["account_id"] != r.account_id or -got[Pocket.CREDIT] !=
                    r.from_credit_micro_usd or -got[Pocket.TOPUP] != r.from_topup_micro_usd):
                report.problems.append(
                    f"{tid}: {r.status} for {format_usd(r.amount_micro_usd)} USD but its "
                    f"charges are {format_usd(-got[Pocket.CREDIT])} USD credit and "
                    f"{format_usd(-got[Pocket.TOPUP])} USD top-up")
        elif charged:
            report.problems.append(f"{tid}: charged in the ledger but its reservation is "
                                   f"{r.status}")
        if r.status == ReservationStatus.REFUNDED:
            back = refunded[Pocket.CREDIT] + refunded[Pocket.TOPUP] if refunded else 0
            if back != r.amount_micro_usd:
                report.problems.append(f"{tid}: refunded {format_usd(back)} USD of "
                                       f"{format_usd(r.amount_micro_usd)} USD")
        elif refunded:
            report.problems.append(f"{tid}: refunded in the ledger but its reservation is "
                                   f"{r.status}")
        if r.status not in set(ReservationStatus):
            report.problems.append(f"{tid}: unknown reservation status {r.status!r}")
    for (tid, kind), _entry in moved.items():
        report.problems.append(f"{tid}: {kind} in the ledger without a reservation")
