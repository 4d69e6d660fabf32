"""The wallet under concurrency and crashes, on real SQLite and PostgreSQL: many jobs of one
account finishing at once against a balance that covers only some, charges raced for one
job, workers killed mid-charge, and random sequences of everything (hypothesis) keeping the
invariants after every step."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from app.billing import wallet
from app.billing.accounts import create_account
from app.billing.wallet import InsufficientFunds, period_of
from app.store.db import Database
from app.store.models import LedgerEntry, Reservation
from tests.support.paths import REPO

JAN = datetime(2027, 1, 10, tzinfo=UTC)
FEB = datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC)
USD = 1_000_000
THREADS = 20


def run_at_once(count: int, work: Callable[[int, Database, threading.Barrier], Any],
                url: str) -> list[Any]:
    """``work(i, its own database, barrier)`` in ``count`` threads, each with its own engine
    (so its own connection); the barrier (reusable) lines them up. The first real error of a
    thread is raised here (the others, stopped by the broken barrier, are not)."""
    barrier = threading.Barrier(count, timeout=60)

    def run(index: int) -> Any:
        own = Database(url)
        try:
            return work(index, own, barrier)
        except BaseException:
            barrier.abort()
            raise
        finally:
            own.dispose()

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        errors = [f.exception() for f in futures if f.exception() is not None]
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if errors:
        raise (real or errors)[0]
    return [future.result() for future in futures]


def charges_of(database: Database, account_id: str) -> dict[str, int]:
    with database.session() as session:
        rows = session.execute(select(LedgerEntry.transcription_id, func.count(),
                                      func.sum(LedgerEntry.amount_micro_usd))
                               .where(LedgerEntry.account_id == account_id,
                                      LedgerEntry.kind == "charge")
                               .group_by(LedgerEntry.transcription_id)).all()
    return {row[0]: -int(row[2]) for row in rows}


def test_many_jobs_finishing_at_once_never_overdraw_the_wallet(database):
    cost = 450_000  # 6.00 USD available covers 13 of the 20 jobs, with 0.15 left
    with database.session() as session:
        create_account(session, "Busy", "acct_busy", 1 * USD, JAN)
        wallet.topup(session, "acct_busy", 5 * USD, JAN)
    # Every thread works in February: they also race to roll January's credit over.

    def job(index: int, own: Database, barrier: threading.Barrier) -> bool:
        barrier.wait()
        try:
            with own.session() as session:
                wallet.reserve(session, "acct_busy", "key_1", f"tr_{index}", cost, FEB)
        except InsufficientFunds:
            barrier.wait()
            return False
        barrier.wait()  # then every job that could start completes at once
        with own.session() as session:
            assert wallet.charge(session, f"tr_{index}", FEB) == cost
        return True

    outcomes = run_at_once(THREADS, job, database.url)
    assert sum(outcomes) == 13
    charged = charges_of(database, "acct_busy")
    assert charged == {f"tr_{i}": cost for i, ok in enumerate(outcomes) if ok}
    with database.session() as session:
        after = wallet.balances(session, "acct_busy", FEB)
        grants = session.scalars(select(LedgerEntry.period).where(
            LedgerEntry.kind.in_(["credit_grant", "credit_expiry"]))).all()
    assert (after.available, after.held, after.credit_remaining, after.topup) == (
        150_000, 0, 0, 150_000)
    assert sorted(grants) == ["2027-01", "2027-01", "2027-02"]  # granted, expired, granted
    report = wallet.audit(database)
    assert report.ok, report.problems


def test_one_job_charged_from_many_threads_is_charged_once(database):
    with database.session() as session:
        create_account(session, "Retry", "acct_retry", 0, JAN)
        wallet.topup(session, "acct_retry", 5 * USD, JAN)
        wallet.reserve(session, "acct_retry", None, "tr_once", 1_234_567, JAN)

    def charge(index: int, own: Database, barrier: threading.Barrier) -> int:
        barrier.wait()
        with own.session() as session:
            return wallet.charge(session, "tr_once", JAN)

    assert sorted(run_at_once(8, charge, database.url)) == [0] * 7 + [1_234_567]
    assert charges_of(database, "acct_retry") == {"tr_once": 1_234_567}
    assert wallet.audit(database).ok


def test_a_charge_racing_a_release_and_repeated_reserves_settle_once(database):
    with database.session() as session:
        create_account(session, "Race", "acct_race", 0, JAN)
        wallet.topup(session, "acct_race", 5 * USD, JAN)

    def reserve(index: int, own: Database, barrier: threading.Barrier) -> int:
        barrier.wait()
        with own.session() as session:
            return wallet.reserve(session, "acct_race", None, "tr_r", 2 * USD, JAN).amount_micro_usd

    assert run_at_once(8, reserve, database.url) == [2 * USD] * 8
    with database.session() as session:
        assert wallet.balances(session, "acct_race", JAN).held == 2 * USD

    def settle(index: int, own: Database, barrier: threading.Barrier) -> tuple[str, int]:
        barrier.wait()
        with own.session() as session:
            if index % 2:
                return "charge", wallet.charge(session, "tr_r", JAN)
            return "release", wallet.release(session, "tr_r", JAN)

    winners = [outcome for outcome in run_at_once(8, settle, database.url) if outcome[1]]
    assert len(winners) == 1
    with database.session() as session:
        after = wallet.balances(session, "acct_race", JAN)
        status = session.get(Reservation, "tr_r").status
    assert after.held == 0
    assert (status, after.topup) == (("charged", 3 * USD) if winners[0][0] == "charge"
                                     else ("released", 5 * USD))
    assert wallet.audit(database).ok


# --------------------------------------------------------------------------- crashes

KILLED_WORKER = textwrap.dedent("""
    import os, signal, sys
    from datetime import UTC, datetime
    from app.billing import wallet
    from app.store.db import Database

    database = Database(sys.argv[1])
    session = database.sessions()
    charged = wallet.charge(session, "tr_crash", datetime(2027, 1, 10, tzinfo=UTC))
    assert charged == 1_000_000, charged
    if sys.argv[2] == "after-commit":
        session.commit()  # the result and the charge are stored; reporting never happens
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("moment", ["before-commit", "after-commit"])
def test_a_worker_killed_while_charging_and_the_retry_charge_once(database, moment):
    with database.session() as session:
        create_account(session, "Crash", "acct_crash", 0, JAN)
        wallet.topup(session, "acct_crash", 5 * USD, JAN)
        wallet.reserve(session, "acct_crash", None, "tr_crash", 1 * USD, JAN)
    killed = subprocess.run([sys.executable, "-c", KILLED_WORKER, database.url, moment],
                            capture_output=True, text=True, timeout=60,
                            cwd=str(REPO))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with database.session() as session:  # the retried job charges again
        retried = wallet.charge(session, "tr_crash", JAN)
    assert retried == (1 * USD if moment == "before-commit" else 0)
    assert charges_of(database, "acct_crash") == {"tr_crash": 1 * USD}
    with database.session() as session:
        assert wallet.balances(session, "acct_crash", JAN).topup == 4 * USD
    assert wallet.audit(database).ok


# --------------------------------------------------------------------------- property


@dataclass
class Model:
    """The wallet's rules again, in plain Python, to compare the database with."""

    monthly: int = 0
    period: str | None = None
    credit: int = 0
    topup: int = 0
    held_credit: int = 0
    held_topup: int = 0
    #: transcription id -> [from credit, from top-up, credit period, status]
    reservations: dict[str, list[Any]] = field(default_factory=dict)

    def roll(self, now: datetime) -> None:
        target = period_of(now)
        if self.period is None or target > self.period:
            self.credit = self.held_credit + self.monthly
            self.period = target

    def reserve(self, tid: str, amount: int) -> bool:
        free_credit = self.credit - self.held_credit
        if free_credit + self.topup - self.held_topup < amount:
            return False
        from_credit = min(amount, free_credit)
        self.held_credit += from_credit
        self.held_topup += amount - from_credit
        self.reservations[tid] = [from_credit, amount - from_credit, self.period, "held"]
        return True

    def settle(self, tid: str, charge: bool) -> None:
        from_credit, from_topup, period, _status = self.reservations[tid]
        self.held_credit -= from_credit
        self.held_topup -= from_topup
        if charge:
            self.credit -= from_credit
            self.topup -= from_topup
        elif period != self.period:
            self.credit -= from_credit
        self.reservations[tid][3] = "charged" if charge else "released"

    def refund(self, tid: str) -> None:
        from_credit, from_topup, period, _status = self.reservations[tid]
        if period == self.period:
            self.credit += from_credit
            self.topup += from_topup
        else:
            self.topup += from_credit + from_topup
        self.reservations[tid][3] = "refunded"


class WalletMachine(RuleBasedStateMachine):
    """Random top-ups, months passing, jobs reserved / charged / failed or cancelled /
    charged again by a retry / refunded, corrections and monthly-credit changes."""

    database: Database
    accounts = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.account = f"acct_h{next(self.accounts)}"
        self.now = JAN
        self.jobs = itertools.count()
        self.model = Model()
        with self.database.session() as session:
            create_account(session, "Hypothesis", self.account, 0, self.now)
        self.model.roll(self.now)

    def _in(self, status: str) -> list[str]:
        return sorted(t for t, r in self.model.reservations.items() if r[3] == status)

    @rule(amount=st.integers(5 * USD, 8 * USD))
    def top_up(self, amount: int) -> None:
        with self.database.session() as session:
            wallet.topup(session, self.account, amount, self.now)
        self.model.roll(self.now)
        self.model.topup += amount

    @rule(months=st.integers(1, 2), day=st.integers(1, 28))
    def time_passes(self, months: int, day: int) -> None:
        month = self.now.month - 1 + months
        self.now = self.now.replace(year=self.now.year + month // 12, month=month % 12 + 1,
                                    day=day)

    @rule(amount=st.one_of(st.just(0), st.integers(1, 4 * USD)))
    def reserve(self, amount: int) -> None:
        tid = f"tr_{self.account}_{next(self.jobs)}"
        self.model.roll(self.now)
        expected = self.model.reserve(tid, amount)
        try:
            with self.database.session() as session:
                made = wallet.reserve(session, self.account, "key_h", tid, amount, self.now)
                got = (made.from_credit_micro_usd, made.from_topup_micro_usd)
        except InsufficientFunds:
            assert not expected
            return
        assert expected and list(got) == self.model.reservations[tid][:2]

    @precondition(lambda self: self._in("held"))
    @rule(data=st.data(), completes=st.booleans())
    def job_ends(self, data: st.DataObject, completes: bool) -> None:
        tid = data.draw(st.sampled_from(self._in("held")))
        amount = sum(self.model.reservations[tid][:2])
        with self.database.session() as session:
            done = (wallet.charge if completes else wallet.release)(session, tid, self.now)
        assert done == amount
        self.model.roll(self.now)
        self.model.settle(tid, charge=completes)

    @precondition(lambda self: self._in("charged") or self._in("released"))
    @rule(data=st.data())
    def retry_settles_again(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(self._in("charged") + self._in("released")))
        with self.database.session() as session:
            assert wallet.charge(session, tid, self.now) == 0
            assert wallet.release(session, tid, self.now) == 0
        self.model.roll(self.now)

    @precondition(lambda self: self._in("charged"))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(self._in("charged")))
        with self.database.session() as session:
            assert wallet.refund(session, tid, self.now) == sum(self.model.reservations[tid][:2])
        self.model.roll(self.now)
        self.model.refund(tid)

    @rule(pocket=st.sampled_from(["credit", "topup"]),
          amount=st.integers(-3 * USD, 3 * USD).filter(bool))
    def adjust(self, pocket: str, amount: int) -> None:
        self.model.roll(self.now)
        balance = self.model.credit if pocket == "credit" else self.model.topup
        held = self.model.held_credit if pocket == "credit" else self.model.held_topup
        try:
            with self.database.session() as session:
                wallet.adjust(session, self.account, pocket, amount, self.now, note="h")
        except InsufficientFunds:
            assert balance - held + amount < 0
            return
        assert balance - held + amount >= 0
        setattr(self.model, pocket, balance + amount)

    @rule(amount=st.integers(0, 3 * USD))
    def set_monthly_credit(self, amount: int) -> None:
        with self.database.session() as session:
            wallet.set_monthly_credit(session, self.account, amount, self.now)
        model = self.model
        model.roll(self.now)
        model.credit += max(amount - model.monthly, -(model.credit - model.held_credit))
        model.monthly = amount

    @invariant()
    def balances_follow_the_rules_and_the_ledger(self) -> None:
        with self.database.session() as session:
            now = wallet.balances(session, self.account, self.now)
        self.model.roll(self.now)
        model = self.model
        assert (now.monthly_credit, now.credit_remaining, now.topup, now.held_credit,
                now.held_topup) == (model.monthly, model.credit, model.topup,
                                    model.held_credit, model.held_topup)
        assert 0 <= now.held_credit <= now.credit_remaining
        assert 0 <= now.held_topup <= now.topup
        assert now.available >= 0
        report = wallet.audit(self.database)
        assert report.ok, report.problems


def test_random_sequences_keep_the_invariants(database):
    machine = type("Machine", (WalletMachine,), {"database": database})
    run_state_machine_as_test(machine, settings=hypothesis_settings(
        max_examples=25, stateful_step_count=25, deadline=None, derandomize=False))
