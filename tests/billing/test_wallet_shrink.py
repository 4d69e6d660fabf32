"""``wallet.shrink``: a job that costs less than it reserved (an AI analysis failed, and is
not charged) lowers its hold before the charge; top-up goes back first, the audit stays
clean, and a hold that is no longer held is left alone."""

from __future__ import annotations

from app.billing import wallet
from tests.billing.test_wallet import JAN, USD, assert_audit_ok, balances, ledger, new_account


def test_shrinking_gives_back_topup_first_then_charges_the_rest(database):
    new_account(database, monthly=10_000, topup=5 * USD)
    with database.session() as session:
        held = wallet.reserve(session, "acct_t", None, "tr_1", 16_000, JAN)
        assert (held.from_credit_micro_usd, held.from_topup_micro_usd) == (10_000, 6_000)
        assert wallet.shrink(session, "tr_1", 12_000, JAN) == 4_000
        assert wallet.balances(session, "acct_t", JAN).held == 12_000
        assert wallet.charge(session, "tr_1", JAN) == 12_000
    after = balances(database)
    assert (after.credit_remaining, after.topup, after.held) == (0, 5 * USD - 2_000, 0)
    assert [entry[:3] for entry in ledger(database) if entry[0] == "charge"] == [
        ("charge", "credit", -10_000), ("charge", "topup", -2_000)]
    assert_audit_ok(database)


def test_shrinking_into_the_credit_part(database):
    new_account(database, monthly=10_000, topup=5 * USD)
    with database.session() as session:
        wallet.reserve(session, "acct_t", None, "tr_1", 16_000, JAN)
        assert wallet.shrink(session, "tr_1", 7_000, JAN) == 9_000
        assert wallet.charge(session, "tr_1", JAN) == 7_000
    assert [entry[:3] for entry in ledger(database) if entry[0] == "charge"] == [
        ("charge", "credit", -7_000)]
    assert balances(database).available == 3_000 + 5 * USD
    assert_audit_ok(database)


def test_nothing_to_shrink(database):
    new_account(database, monthly=10_000)
    with database.session() as session:
        assert wallet.shrink(session, "tr_none", 0, JAN) == 0  # no reservation (billing off)
        wallet.reserve(session, "acct_t", None, "tr_1", 5_000, JAN)
        assert wallet.shrink(session, "tr_1", 5_000, JAN) == 0  # costs what it holds
        assert wallet.shrink(session, "tr_1", 9_000, JAN) == 0  # never grows
        wallet.charge(session, "tr_1", JAN)
        assert wallet.shrink(session, "tr_1", 1_000, JAN) == 0  # charged already
    assert balances(database).available == 5_000
    assert_audit_ok(database)
