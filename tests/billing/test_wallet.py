"""The wallet on real SQLite and PostgreSQL: credit first then top-up, the month boundary,
reserve / charge / release / refund exactly once, operator corrections, and an audit that
notices when the balances and the ledger disagree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from app.billing import wallet
from app.billing.accounts import AccountExists, create_account
from app.billing.pricing import quickstart_cost_micro_usd
from app.billing.wallet import (
    InsufficientFunds,
    InvalidAmount,
    UnknownAccount,
    format_usd,
    parse_usd,
)
from app.store.db import Database
from app.store.models import Account, LedgerEntry, Reservation

JAN = datetime(2027, 1, 10, 12, tzinfo=UTC)
JAN_END = datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
FEB = datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC)
APR = datetime(2027, 4, 15, tzinfo=UTC)
USD = 1_000_000


def new_account(database: Database, monthly: int = 0, topup: int = 0,
                account_id: str = "acct_t", now: datetime = JAN) -> str:
    with database.session() as session:
        create_account(session, "Test", account_id, monthly, now)
        if topup:
            wallet.topup(session, account_id, topup, now)
    return account_id


def balances(database: Database, account_id: str = "acct_t", now: datetime = JAN):
    with database.session() as session:
        return wallet.balances(session, account_id, now)


def ledger(database: Database, account_id: str = "acct_t") -> list[tuple]:
    with database.session() as session:
        return [(e.kind, e.pocket, e.amount_micro_usd, e.transcription_id, e.period)
                for e in session.scalars(select(LedgerEntry).where(
                    LedgerEntry.account_id == account_id).order_by(LedgerEntry.id))]


def assert_audit_ok(database: Database) -> None:
    report = wallet.audit(database)
    assert report.ok, report.problems


def test_spending_draws_on_the_monthly_credit_first_then_on_the_topup(database):
    cost = quickstart_cost_micro_usd(120)  # 120 s at 0.20 USD an hour
    assert cost == 6667
    new_account(database, monthly=10_000, topup=5 * USD)
    with database.session() as session:
        first = wallet.reserve(session, "acct_t", None, "tr_1", cost, JAN)
        second = wallet.reserve(session, "acct_t", None, "tr_2", cost, JAN)
        assert (first.from_credit_micro_usd, first.from_topup_micro_usd) == (6667, 0)
        assert (second.from_credit_micro_usd, second.from_topup_micro_usd) == (3333, 3334)
        held = wallet.balances(session, "acct_t", JAN)
        assert held.available == 10_000 + 5 * USD - 2 * cost and held.held == 2 * cost
        assert wallet.charge(session, "tr_1", JAN) == cost
        assert wallet.charge(session, "tr_2", JAN) == cost
    after = balances(database)
    assert (after.credit_remaining, after.topup, after.held) == (0, 5 * USD - 3334, 0)
    assert after.available == 5 * USD + 10_000 - 2 * cost
    charges = [entry for entry in ledger(database) if entry[0] == "charge"]
    assert charges == [("charge", "credit", -6667, "tr_1", "2027-01"),
                       ("charge", "credit", -3333, "tr_2", "2027-01"),
                       ("charge", "topup", -3334, "tr_2", None)]
    assert_audit_ok(database)


def test_the_month_boundary_drops_what_is_left_and_grants_anew(database):
    new_account(database, monthly=1 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_done", 300_000, JAN)
        wallet.charge(session, "tr_done", JAN)
        wallet.reserve(session, "acct_t", None, "tr_charged_later", 200_000, JAN)
        wallet.reserve(session, "acct_t", None, "tr_released_later", 100_000, JAN)
    assert balances(database, now=JAN_END).available == 400_000

    february = balances(database, now=FEB)  # 0.40 unused expires; the held 0.30 stays held
    assert february.period == "2027-02"
    assert (february.credit_remaining, february.held_credit) == (1_300_000, 300_000)
    assert february.available == 1 * USD
    with database.session() as session:
        assert wallet.charge(session, "tr_charged_later", FEB) == 200_000
        assert wallet.release(session, "tr_released_later", FEB) == 100_000
    after = balances(database, now=FEB)
    # January's credit held by a job that did not complete expires instead of coming back.
    assert (after.credit_remaining, after.held, after.available) == (1 * USD, 0, 1 * USD)
    assert ledger(database) == [
        ("credit_grant", "credit", 1 * USD, None, "2027-01"),
        ("charge", "credit", -300_000, "tr_done", "2027-01"),
        ("credit_expiry", "credit", -400_000, None, "2027-01"),
        ("credit_grant", "credit", 1 * USD, None, "2027-02"),
        ("charge", "credit", -200_000, "tr_charged_later", "2027-01"),
        ("credit_expiry", "credit", -100_000, "tr_released_later", "2027-01"),
    ]
    assert_audit_ok(database)

    # A process whose clock is a little behind never rolls the wallet back into January.
    assert balances(database, now=JAN_END).period == "2027-02"
    # Months without activity grant nothing: April expires February's rest and grants once.
    april = balances(database, now=APR)
    assert (april.period, april.credit_remaining) == ("2027-04", 1 * USD)
    assert ledger(database)[-2:] == [("credit_expiry", "credit", -1 * USD, None, "2027-02"),
                                     ("credit_grant", "credit", 1 * USD, None, "2027-04")]
    assert_audit_ok(database)


def test_a_topup_is_at_least_5_usd_and_never_expires(database):
    new_account(database)
    with database.session() as session, pytest.raises(InvalidAmount, match=r"at least 5\.00"):
        wallet.topup(session, "acct_t", 4_999_999, JAN)
    with database.session() as session:
        wallet.topup(session, "acct_t", 5 * USD, JAN, note="invoice 7")
    assert balances(database, now=APR).topup == 5 * USD
    assert ledger(database) == [("topup", "topup", 5 * USD, None, None)]


def test_insufficient_funds_reserves_nothing(database):
    new_account(database, monthly=1 * USD)
    with database.session() as session, pytest.raises(InsufficientFunds) as raised:
        wallet.reserve(session, "acct_t", None, "tr_big", 1_500_000, JAN)
    assert (raised.value.available_micro_usd, raised.value.required_micro_usd) == (
        1 * USD, 1_500_000)
    assert "1.00 USD available, 1.50 USD needed" in str(raised.value)
    with database.session() as session:
        assert session.get(Reservation, "tr_big") is None
        assert wallet.has_funds(session, "acct_t", JAN)
        nothing = wallet.reserve(session, "acct_t", None, "tr_free", 0, JAN)
        assert (nothing.amount_micro_usd, nothing.status) == (0, "held")
        assert wallet.charge(session, "tr_free", JAN) == 0
        everything = wallet.reserve(session, "acct_t", None, "tr_all", 1 * USD, JAN)
        assert everything.from_credit_micro_usd == 1 * USD
        assert not wallet.has_funds(session, "acct_t", JAN)
    assert balances(database).held == 1 * USD
    assert_audit_ok(database)


def test_reserve_charge_and_release_happen_once_whatever_is_repeated(database):
    new_account(database, topup=5 * USD)
    with database.session() as session:
        first = wallet.reserve(session, "acct_t", None, "tr_1", 1 * USD, JAN)
        again = wallet.reserve(session, "acct_t", None, "tr_1", 2 * USD, JAN)
        assert again.amount_micro_usd == first.amount_micro_usd == 1 * USD
    assert balances(database).held == 1 * USD
    with database.session() as session:
        assert wallet.charge(session, "tr_1", JAN) == 1 * USD
    with database.session() as session:
        assert wallet.charge(session, "tr_1", JAN) == 0
        assert wallet.release(session, "tr_1", JAN) == 0  # charged stays charged
        assert wallet.charge(session, "tr_unknown", JAN) == 0
        assert wallet.release(session, "tr_unknown", JAN) == 0
        wallet.reserve(session, "acct_t", None, "tr_2", 1 * USD, JAN)
        assert wallet.release(session, "tr_2", JAN) == 1 * USD
        assert wallet.release(session, "tr_2", JAN) == 0
        assert wallet.charge(session, "tr_2", JAN) == 0  # released stays free
        assert wallet.reserve(session, "acct_t", None, "tr_2", 1 * USD, JAN).status == "released"
    assert [e for e in ledger(database) if e[0] == "charge"] == [
        ("charge", "topup", -1 * USD, "tr_1", None)]
    after = balances(database)
    assert (after.topup, after.held) == (4 * USD, 0)
    assert_audit_ok(database)


def test_a_charge_rolled_back_with_its_transaction_is_charged_by_the_retry(database):
    new_account(database, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 1 * USD, JAN)
    with pytest.raises(RuntimeError), database.session() as session:
        assert wallet.charge(session, "tr_1", JAN) == 1 * USD
        raise RuntimeError("the worker died before its commit")
    assert balances(database).held == 1 * USD
    with database.session() as session:
        assert wallet.charge(session, "tr_1", JAN) == 1 * USD
    assert balances(database).topup == 4 * USD
    assert_audit_ok(database)


def test_the_database_refuses_a_second_charge_entry(database):
    from sqlalchemy.exc import IntegrityError

    new_account(database, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 1 * USD, JAN)
        wallet.charge(session, "tr_1", JAN)
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(LedgerEntry(account_id="acct_t", kind="charge", pocket="topup",
                                amount_micro_usd=-1 * USD, transcription_id="tr_1",
                                created_at=JAN))
        session.flush()


def test_the_database_refuses_a_negative_balance(database):
    from sqlalchemy.exc import IntegrityError

    new_account(database, topup=5 * USD)
    with pytest.raises(IntegrityError), database.session() as session:
        session.execute(text("UPDATE wallets SET topup_micro_usd = -1 "
                             "WHERE account_id = 'acct_t'"))


def test_refunds_go_back_where_they_came_from_or_to_the_topup_once_the_month_is_over(
        database):
    new_account(database, monthly=1 * USD, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", "key_1", "tr_2", 200_000, JAN)
        wallet.charge(session, "tr_2", JAN)
        wallet.reserve(session, "acct_t", "key_1", "tr_1", 1_500_000, JAN)
        wallet.charge(session, "tr_1", JAN)
    with database.session() as session:
        assert wallet.refund(session, "tr_1", JAN, note="bad audio") == 1_500_000
        assert wallet.refund(session, "tr_1", JAN) == 0
        assert wallet.refund(session, "tr_unknown", JAN) == 0
    january = balances(database)
    assert (january.credit_remaining, january.topup) == (800_000, 5 * USD)
    with database.session() as session:
        assert wallet.refund(session, "tr_2", FEB) == 200_000  # January's credit is gone
    february = balances(database, now=FEB)
    assert (february.credit_remaining, february.topup) == (1 * USD, 5_200_000)
    assert [e[:4] for e in ledger(database) if e[0] == "refund"] == [
        ("refund", "credit", 800_000, "tr_1"), ("refund", "topup", 700_000, "tr_1"),
        ("refund", "topup", 200_000, "tr_2")]
    assert_audit_ok(database)


def test_adjustments_never_take_a_balance_below_what_is_held(database):
    new_account(database, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 4 * USD, JAN)
    with database.session() as session, pytest.raises(InsufficientFunds) as raised:
        wallet.adjust(session, "acct_t", "topup", -1_500_000, JAN, note="typo")
    assert raised.value.available_micro_usd == 1 * USD
    assert "at most 1.00 USD can be taken" in str(raised.value)
    with database.session() as session:
        wallet.adjust(session, "acct_t", "topup", -1 * USD, JAN, note="typo")
        wallet.adjust(session, "acct_t", "credit", 250_000, JAN, note="goodwill")
        with pytest.raises(InvalidAmount):
            wallet.adjust(session, "acct_t", "credit", 0, JAN)
        with pytest.raises(InsufficientFunds):
            wallet.adjust(session, "acct_t", "credit", -250_001, JAN)
    after = balances(database)
    assert (after.topup, after.held_topup, after.credit_remaining, after.available) == (
        4 * USD, 4 * USD, 250_000, 250_000)
    assert_audit_ok(database)


def test_set_monthly_credit_counts_this_month_as_granted_the_new_amount(database):
    new_account(database, monthly=1 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 300_000, JAN)
        wallet.charge(session, "tr_1", JAN)
        assert wallet.set_monthly_credit(session, "acct_t", 2 * USD, JAN).credit_remaining == (
            1_700_000)
        assert wallet.set_monthly_credit(session, "acct_t", 500_000, JAN).credit_remaining == (
            200_000)
        wallet.reserve(session, "acct_t", None, "tr_2", 100_000, JAN)
        # Lowering takes back at most what is neither spent nor held.
        assert wallet.set_monthly_credit(session, "acct_t", 0, JAN).credit_remaining == 100_000
    february = balances(database, now=FEB)
    assert (february.monthly_credit, february.available) == (0, 0)
    with database.session() as session:
        wallet.set_monthly_credit(session, "acct_t", 3 * USD, FEB)
    assert balances(database, now=datetime(2027, 3, 1, tzinfo=UTC)).available == 3 * USD
    assert_audit_ok(database)


def test_wallets_of_accounts_made_by_hand_appear_when_needed(database):
    with database.session() as session:
        session.add(Account(id="acct_by_hand", name="By hand"))
    assert balances(database, "acct_by_hand").available == 0
    assert balances(database, "acct_default").available == 0  # from migration 0004
    with database.session() as session, pytest.raises(UnknownAccount):
        wallet.balances(session, "acct_nobody", JAN)
    with database.session() as session, pytest.raises(AccountExists):
        create_account(session, "Again", "acct_by_hand")


def test_the_audit_notices_a_tampered_balance_and_a_lone_charge(database):
    new_account(database, monthly=1 * USD, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 2 * USD, JAN)
    assert_audit_ok(database)

    with database.engine.begin() as connection:
        connection.execute(text("UPDATE wallets SET topup_micro_usd = topup_micro_usd + 1 "
                                "WHERE account_id = 'acct_t'"))
    report = wallet.audit(database)
    assert not report.ok
    assert report.problems == ["acct_t: topup balance is 5.000001 USD but the ledger sums to "
                               "5.00 USD"]
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE wallets SET topup_micro_usd = topup_micro_usd - 1, "
                                "held_credit_micro_usd = 0 WHERE account_id = 'acct_t'"))
    assert any("credit held is 0.00 USD but held reservations sum to 1.00 USD" in problem
               for problem in wallet.audit(database).problems)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE wallets SET held_credit_micro_usd = 1000000 "
                                "WHERE account_id = 'acct_t'"))
    assert_audit_ok(database)

    with database.session() as session:  # a charge nobody reserved, balance changed to match
        session.add(LedgerEntry(account_id="acct_t", kind="charge", pocket="topup",
                                amount_micro_usd=-100, transcription_id="tr_ghost",
                                created_at=JAN))
        session.execute(text("UPDATE wallets SET topup_micro_usd = topup_micro_usd - 100 "
                             "WHERE account_id = 'acct_t'"))
    assert wallet.audit(database).problems == ["tr_ghost: charge in the ledger without a "
                                               "reservation"]


def test_the_audit_notices_a_charged_reservation_without_its_charges(database):
    new_account(database, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 1 * USD, JAN)
        wallet.charge(session, "tr_1", JAN)
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries WHERE kind = 'charge'"))
        connection.execute(text("UPDATE wallets SET topup_micro_usd = 5000000 "
                                "WHERE account_id = 'acct_t'"))
    problems = wallet.audit(database).problems
    assert problems == ["tr_1: charged for 1.00 USD but its charges are 0.00 USD credit and "
                        "0.00 USD top-up"]


def test_the_ledger_is_exact_to_the_micro_dollar(database):
    new_account(database, topup=5 * USD)
    with database.session() as session:
        for number in range(1, 8):
            cost = quickstart_cost_micro_usd(number * 7.3)
            wallet.reserve(session, "acct_t", None, f"tr_{number}", cost, JAN)
            wallet.charge(session, f"tr_{number}", JAN)
        spent = session.scalar(select(func.sum(LedgerEntry.amount_micro_usd)).where(
            LedgerEntry.kind == "charge"))
    expected = sum(quickstart_cost_micro_usd(number * 7.3) for number in range(1, 8))
    assert -spent == expected and balances(database).topup == 5 * USD - expected


@pytest.mark.parametrize(("text_", "micro"), [
    ("5.00", 5_000_000), ("5", 5_000_000), (" 0.000001 ", 1), ("0.6667", 666_700),
    ("1e3", 1_000_000_000), ("5.000000000", 5_000_000), ("0", 0), ("-0", 0),
])
def test_parse_usd_is_exact(text_, micro):
    assert parse_usd(text_) == micro


@pytest.mark.parametrize(("text_", "message"), [
    ("5.0000001", "more than 6 decimal places"), ("-1", "must not be negative"),
    ("abc", "amount in US dollars"), ("NaN", "finite"), ("Infinity", "finite"),
    ("1e30", "too large"), ("1e999999999", "too large"), ("1000000.000001", "too large"),
    (5.0, "written as a string"), (5, "written as a string"), ("", "amount in US dollars"),
])
def test_parse_usd_refuses_what_is_not_an_exact_amount(text_, message):
    with pytest.raises(InvalidAmount, match=message):
        parse_usd(text_)


def test_parse_usd_takes_signed_amounts_when_asked_and_format_usd_is_exact():
    assert parse_usd("-1.25", allow_negative=True) == -1_250_000
    assert [format_usd(m) for m in (5_000_000, 6667, 1_234_500, -1_250_000, 0, 1)] == [
        "5.00", "0.006667", "1.2345", "-1.25", "0.00", "0.000001"]
