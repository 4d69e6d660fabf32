"""The admin API, ``/api/v1/admin``: accounts, top-ups, monthly credit, adjustments, refunds,
the ledger and its audit: what ``voxhook accounts`` and ``voxhook wallet`` do, over HTTP.

It answers only ``Authorization: Bearer <VOXHOOK_ADMIN_TOKEN>``, the operator's token, never
a customer key (that is a 403, so that nobody mistakes one for the other); with no token
configured every route answers 403 ``admin_api_disabled``, saying how to turn it on. 403
rather than 404: the routes are in the public OpenAPI document anyway, and the operator
trying them should learn what is missing. Dollar amounts are exact decimal strings both
ways (``"5.00"``); JSON numbers are refused, so that no float ever touches money.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from app.api.openapi import link, links
from app.api.schemas.common import ApiErrorSchema, Text
from app.billing import accounts, wallet
from app.billing.keys import looks_like_key
from app.errors import (
    AccountExists,
    AdminApiDisabled,
    BalanceTooLow,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from app.store.models import Account, Pocket
from app.transcriptions.representation import UtcDateTime

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin",
                description="Operator API: accounts and money; the VOXHOOK_ADMIN_TOKEN only.")

#: The OpenAPI security scheme of these routes (registered by the app factory).
SECURITY_SCHEME = {"type": "http", "scheme": "bearer",
                   "description": "The operator token, VOXHOOK_ADMIN_TOKEN (not a customer key)."}


@blp.before_request
def authenticate_operator() -> None:
    """Let the operator's token through, and nothing else."""
    token = current_app.extensions["voxhook"].settings.admin_token
    if not token:
        raise AdminApiDisabled(
            "The admin API is off on this server: set VOXHOOK_ADMIN_TOKEN (at least 32 "
            "characters, e.g. `openssl rand -hex 32`) for the API and restart it, or use the "
            "`voxhook accounts` and `voxhook wallet` commands.")
    header = (request.headers.get("Authorization") or "").strip()
    scheme, _, rest = header.partition(" ")
    presented = rest.strip() if scheme.lower() == "bearer" else header
    if looks_like_key(presented):
        raise Forbidden("This is a customer API key; the admin API takes only the operator "
                        "token: 'Authorization: Bearer <VOXHOOK_ADMIN_TOKEN>'.")
    if scheme.lower() != "bearer" or not presented:
        raise Unauthorized("Missing admin token: send 'Authorization: Bearer "
                           "<VOXHOOK_ADMIN_TOKEN>'.")
    if not hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8")):
        raise Unauthorized("Wrong admin token: send the value of VOXHOOK_ADMIN_TOKEN that the "
                           "API server runs with.")


# --------------------------------------------------------------------------- schemas


class Usd(fields.String):
    """US dollars as an exact decimal string (``"5.00"``) <-> integer micro-dollars."""

    def __init__(self, *, allow_negative: bool = False, **kwargs: Any) -> None:
        metadata = {"example": "-1.25" if allow_negative else "5.00",
                    "description": "US dollars as an exact decimal string, at most 6 "
                                   "decimal places; JSON numbers are refused."}
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(metadata=metadata, **kwargs)
        self.allow_negative = allow_negative

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return wallet.parse_usd(value, what="the amount", allow_negative=self.allow_negative)
        except wallet.InvalidAmount as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any):
        return None if value is None else wallet.format_usd(value)


def _note() -> fields.String:
    return Text(multiline=True, load_default=None, validate=validate.Length(max=500),
                metadata={"description": "Why, kept in the ledger."})


class AccountCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    id = Text(load_default=None, metadata={
        "description": "Letters, digits, _ and - (up to 40); default a new acct_… id."})
    monthly_credit_usd = Usd(load_default=0, metadata={
        "description": "Credit granted every calendar month (UTC); this month's at once."})


class UsdBodySchema(Schema):
    usd = Usd(required=True)
    note = _note()


class MonthlyCreditSchema(Schema):
    usd = Usd(required=True, metadata={
        "description": "The new monthly credit. This month counts as granted it (what was "
                       "spent so far counts against it); later months are granted it."})


class AdjustmentSchema(Schema):
    pocket = Text(required=True, validate=validate.OneOf([p.value for p in Pocket]))
    usd = Usd(required=True, allow_negative=True)
    note = Text(multiline=True, required=True, validate=validate.Length(min=1, max=500))


class RefundSchema(Schema):
    transcription_id = Text(required=True, validate=validate.Length(min=1, max=40))
    note = _note()


class WalletSchema(Schema):
    period = fields.String(metadata={"description": "The month (YYYY-MM, UTC) of the credit."})
    monthly_credit_usd = Usd()
    credit_remaining_usd = Usd(metadata={"description": "Monthly credit left (held included)."})
    topup_usd = Usd(metadata={"description": "Top-up balance (held included)."})
    held_usd = Usd(metadata={"description": "Held for transcriptions still running."})
    available_usd = Usd(metadata={"description": "What new work may spend."})


class AccountSchema(Schema):
    id = fields.String()
    name = fields.String()
    created_at = UtcDateTime()
    wallet = fields.Nested(WalletSchema)


class AccountListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(AccountSchema))


class LedgerEntrySchema(Schema):
    id = fields.Integer()
    created_at = UtcDateTime()
    kind = fields.String()
    pocket = fields.String()
    usd = Usd(attribute="amount_micro_usd", allow_negative=True)
    transcription_id = fields.String(allow_none=True)
    api_key_id = fields.String(allow_none=True)
    period = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class LedgerSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(LedgerEntrySchema))


class LedgerQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))


class RefundedSchema(Schema):
    transcription_id = fields.String()
    usd = Usd()


class AuditSchema(Schema):
    ok = fields.Boolean()
    wallets = fields.Integer()
    entries = fields.Integer()
    reservations = fields.Integer()
    problems = fields.List(fields.String())


# --------------------------------------------------------------------------- views


def documented(*errors: tuple[int, str]) -> Callable[[Callable[..., Any]], Any]:
    """The admin security scheme and the error answers every admin route shares."""
    shared = ((401, "Missing or wrong admin token."),
              (403, "A customer key (forbidden), or the admin API is off "
                    "(admin_api_disabled: set VOXHOOK_ADMIN_TOKEN)."), *errors)

    def decorate(view: Callable[..., Any]) -> Any:
        for status, description in shared:
            view = blp.alt_response(status, schema=ApiErrorSchema, description=description)(view)
        return blp.doc(security=[{"admin": []}])(view)
    return decorate


@contextmanager
def money() -> Iterator[Session]:
    """A session whose wallet errors become the API's errors, naming the field at fault."""
    try:
        with current_app.extensions["voxhook"].db.session() as session:
            yield session
    except wallet.UnknownAccount as exc:
        raise NotFound(f"No account {exc.account_id!r}; GET /api/v1/admin/accounts lists "
                       "them.") from None
    except accounts.AccountExists as exc:
        raise AccountExists(str(exc).capitalize() + ".") from None
    except accounts.AccountError as exc:
        raise ValidationFailed(f"The request is invalid. {exc.field}: {exc}",
                               fields={exc.field: [str(exc)]}) from None
    except wallet.InvalidAmount as exc:
        raise ValidationFailed(f"The request is invalid. usd: {exc}",
                               fields={"usd": [str(exc)]}) from None
    except wallet.InsufficientFunds as exc:
        raise BalanceTooLow(str(exc),
                            available_usd=wallet.format_usd(exc.available_micro_usd)) from None


def _account_body(account: Account, balances: wallet.Balances) -> dict[str, Any]:
    return {"id": account.id, "name": account.name, "created_at": account.created_at,
            "wallet": {"period": balances.period, "monthly_credit_usd": balances.monthly_credit,
                       "credit_remaining_usd": balances.credit_remaining,
                       "topup_usd": balances.topup, "held_usd": balances.held,
                       "available_usd": balances.available}}


def _account(session: Session, account_id: str) -> dict[str, Any]:
    account = accounts.get_account(session, account_id)
    if account is None:
        raise wallet.UnknownAccount(account_id)
    return _account_body(account, wallet.balances(session, account_id))


@blp.route("/accounts", methods=["POST"])
@blp.arguments(AccountCreateSchema)
@blp.doc(**links(201, **{
    name: link("/api/v1/admin/accounts/{account_id}" + suffix, method, description,
               account_id="$response.body#/id")
    for name, suffix, method, description in (
        ("GetAccount", "", "get", "Read it."),
        ("TopUp", "/topups", "post", "Add money."),
        ("SetMonthlyCredit", "/monthly_credit", "put", "Set its monthly credit."),
        ("Adjust", "/adjustments", "post", "Correct a balance."),
        ("Ledger", "/ledger", "get", "Its ledger."))}))
@blp.response(201, AccountSchema)
@documented((409, "account_exists: an account has this id."),
            (422, "A field is invalid (each is named)."))
def create_account(body: dict[str, Any]):
    """Create an account with its wallet; its first monthly credit is granted at once."""
    with money() as session:
        account = accounts.create_account(session, body["name"], body["id"],
                                          body["monthly_credit_usd"])
        return _account(session, account.id)


@blp.route("/accounts", methods=["GET"])
@blp.response(200, AccountListSchema)
@documented()
def list_accounts():
    """Every account with its wallet."""
    with money() as session:
        return {"data": [_account_body(account, wallet.balances(session, account.id))
                         for account in accounts.list_accounts(session)]}


@blp.route("/accounts/<account_id>", methods=["GET"])
@blp.response(200, AccountSchema)
@documented((404, "No such account."))
def get_account(account_id: str):
    """An account and its wallet now."""
    with money() as session:
        return _account(session, account_id)


@blp.route("/accounts/<account_id>/topups", methods=["POST"])
@blp.arguments(UsdBodySchema)
@blp.response(201, AccountSchema)
@documented((404, "No such account."),
            (422, "usd is malformed, has more than 6 decimals, or is below 5.00."))
def create_topup(body: dict[str, Any], account_id: str):
    """Add money to the top-up balance (at least 5.00 USD); answers the account."""
    with money() as session:
        wallet.topup(session, account_id, body["usd"], note=body["note"])
        return _account(session, account_id)


@blp.route("/accounts/<account_id>/monthly_credit", methods=["PUT"])
@blp.arguments(MonthlyCreditSchema)
@blp.response(200, AccountSchema)
@documented((404, "No such account."), (422, "usd is malformed or negative."))
def set_monthly_credit(body: dict[str, Any], account_id: str):
    """Set the monthly credit; this month counts as granted the new amount."""
    with money() as session:
        wallet.set_monthly_credit(session, account_id, body["usd"])
        return _account(session, account_id)


@blp.route("/accounts/<account_id>/adjustments", methods=["POST"])
@blp.arguments(AdjustmentSchema)
@blp.response(201, AccountSchema)
@documented((404, "No such account."),
            (409, "balance_too_low: the balance would go below what is held there."),
            (422, "A field is invalid (each is named)."))
def create_adjustment(body: dict[str, Any], account_id: str):
    """Correct one balance by a signed amount (never below what is held, so never below 0)."""
    with money() as session:
        wallet.adjust(session, account_id, body["pocket"], body["usd"], note=body["note"])
        return _account(session, account_id)


@blp.route("/accounts/<account_id>/ledger", methods=["GET"])
@blp.arguments(LedgerQuerySchema, location="query")
@blp.response(200, LedgerSchema)
@documented((404, "No such account."))
def ledger(query: dict[str, Any], account_id: str):
    """The account's latest ledger entries, newest first."""
    with money() as session:
        _account(session, account_id)
        return {"data": wallet.entries(session, account_id, query["limit"])}


@blp.route("/refunds", methods=["POST"])
@blp.arguments(RefundSchema)
@blp.response(201, RefundedSchema)
@documented((404, "The transcription has no charge to refund (never charged, or refunded)."))
def create_refund(body: dict[str, Any]):
    """Give a charged transcription's cost back to its account."""
    with money() as session:
        amount = wallet.refund(session, body["transcription_id"], note=body["note"])
        if not amount:
            raise NotFound(f"Transcription {body['transcription_id']!r} has no charge to "
                           "refund: it was never charged, or is refunded already.")
    return {"transcription_id": body["transcription_id"], "usd": amount}


@blp.route("/wallet/audit", methods=["GET"])
@blp.response(200, AuditSchema)
@documented()
def audit():
    """Check that every balance follows from the ledger (ok: false lists the problems)."""
    report = wallet.audit(current_app.extensions["voxhook"].db)
    return {"ok": report.ok, "wallets": report.wallets, "entries": report.entries,
            "reservations": report.reservations, "problems": report.problems}
