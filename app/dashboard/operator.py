"""The operator's pages (signed in with ``VOXHOOK_ADMIN_TOKEN``): accounts and their money,
each account's ledger, the wallet audit's verdict, workers and pipelines, queue depth.

Money changes call :mod:`app.billing.wallet` and :mod:`app.billing.accounts`, the functions
behind the admin API and the CLI: amounts are parsed from the form's text by
:func:`wallet.parse_usd` (never a float), and every change is a ledger entry.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, url_for

from app.billing import accounts, wallet
from app.dashboard.account import notice
from app.dashboard.web import OPERATOR, access, blp, services
from app.errors import NotFound
from app.store.models import Pocket

LEDGER_ROWS = 100


class FormIncomplete(wallet.WalletError):
    """A money form without what the change needs (shown like the wallet's own errors)."""


@blp.route("/operator/", methods=["GET"])
@access(OPERATOR)
def operator_home() -> Any:
    with services().db.session() as session:
        listed = [(account, wallet.balances(session, account.id))
                  for account in accounts.list_accounts(session)]
    return render_template("dashboard/operator_accounts.html", accounts=listed,
                           billing_enforced=services().settings.billing_enforced)


@blp.route("/operator/accounts", methods=["POST"])
@access(OPERATOR)
def operator_create_account() -> Any:
    try:
        credit = wallet.parse_usd(request.form.get("monthly_credit_usd") or "0",
                                  what="the monthly credit")
        with services().db.session() as session:
            account = accounts.create_account(session, request.form.get("name", ""),
                                              request.form.get("id", "").strip() or None,
                                              credit)
            account_id = account.id
    except wallet.WalletError as exc:
        notice(_sentence(exc), "error")
        return redirect(url_for("dashboard.operator_home"))
    notice(f"Account {account_id} created.")
    return redirect(url_for("dashboard.operator_account", account_id=account_id))


@blp.route("/operator/accounts/<account_id>", methods=["GET"])
@access(OPERATOR)
def operator_account(account_id: str) -> Any:
    with services().db.session() as session:
        account = accounts.get_account(session, account_id)
        if account is None:
            raise NotFound(f"No account '{account_id}'.")
        balances = wallet.balances(session, account_id)
        ledger = wallet.entries(session, account_id, LEDGER_ROWS)
    return render_template("dashboard/operator_account.html", account=account,
                           balances=balances, ledger=ledger, pockets=[str(p) for p in Pocket])


def _money_change(account_id: str, change: Any, done: str) -> Any:
    """Run a wallet change; its error (bad amount, below what is held…) becomes a notice."""
    try:
        with services().db.session() as session:
            change(session)
    except wallet.WalletError as exc:
        notice(_sentence(exc), "error")
    else:
        notice(done)
    return redirect(url_for("dashboard.operator_account", account_id=account_id))


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@blp.route("/operator/accounts/<account_id>/topup", methods=["POST"])
@access(OPERATOR)
def operator_topup(account_id: str) -> Any:
    text = request.form.get("usd", "")
    note = request.form.get("note", "").strip() or None

    def change(session: Any) -> None:
        wallet.topup(session, account_id, wallet.parse_usd(text, what="the top-up"), note=note)
    return _money_change(account_id, change, f"Top-up of ${text.strip()} added.")


@blp.route("/operator/accounts/<account_id>/monthly-credit", methods=["POST"])
@access(OPERATOR)
def operator_monthly_credit(account_id: str) -> Any:
    text = request.form.get("usd", "")

    def change(session: Any) -> None:
        wallet.set_monthly_credit(session, account_id,
                                  wallet.parse_usd(text, what="the monthly credit"))
    return _money_change(account_id, change, f"Monthly credit set to ${text.strip()}.")


@blp.route("/operator/accounts/<account_id>/adjustment", methods=["POST"])
@access(OPERATOR)
def operator_adjustment(account_id: str) -> Any:
    text = request.form.get("usd", "")
    note = request.form.get("note", "").strip()
    pocket = request.form.get("pocket", "")

    def change(session: Any) -> None:
        if pocket not in {str(p) for p in Pocket}:
            raise FormIncomplete("choose the balance to adjust (credit or topup)")
        if not note:
            raise FormIncomplete("an adjustment needs a note saying why (it is kept in the "
                                 "ledger)")
        wallet.adjust(session, account_id, pocket,
                      wallet.parse_usd(text, what="the adjustment", allow_negative=True),
                      note=note)
    return _money_change(account_id, change, f"Adjustment of ${text.strip()} recorded.")


@blp.route("/operator/system", methods=["GET"])
@access(OPERATOR)
def operator_system() -> Any:
    """The wallet audit's verdict, /readyz made readable, and how many jobs wait."""
    report = wallet.audit(services().db)
    readiness = _readiness()
    try:
        depth: int | None = services().queue.depth()
    except Exception:  # Redis away: readiness says so in words
        depth = None
    return render_template("dashboard/operator_system.html", audit=report,
                           readiness=readiness, depth=depth,
                           pipelines=services().catalog.pipelines)


def _readiness() -> dict[str, Any]:
    """What ``GET /readyz`` answers, computed by its own view (one definition of ready)."""
    response = current_app.make_response(current_app.view_functions["health.readyz"]())
    return response.get_json()
