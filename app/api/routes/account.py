"""The account as its keys see it: ``/api/v1/me``, ``/api/v1/keys`` and ``/api/v1/usage``.

Any active key of an account may manage the account's keys (there are no scopes): list them,
create one (its secret is shown once) and revoke one, the key making the request included.
Revocation takes effect on the next request, in every process, since keys are looked up
without a cache (:func:`app.billing.keys.find_active_key_ids`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import select

from app.api.auth import authenticate, caller
from app.api.openapi import link, links
from app.api.schemas.account import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListedSchema,
    ApiKeyListSchema,
    ApiKeySchema,
    MeSchema,
    UsageQuerySchema,
    UsageSchema,
)
from app.api.schemas.common import ApiErrorSchema
from app.billing import wallet
from app.billing.keys import create_key, list_keys
from app.billing.keys import revoke_account_key as revoke_key_of_account
from app.billing.pricing import micro_usd_to_usd
from app.billing.usage import Figures, account_usage
from app.errors import NotFound
from app.store.models import Account, ApiKey, utcnow

blp = Blueprint("account", __name__, url_prefix="/api/v1",
                description="The account: who a key is, its keys, spend per key and day.")
blp.before_request(authenticate)

_listed = ApiKeyListedSchema()
_created = ApiKeyCreatedSchema()
_key = ApiKeySchema()
_UNAUTHORIZED = "Missing, unknown or revoked key."


def _db():
    return current_app.extensions["voxhook"].db


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
def me():
    """Who this key is: its account, its name, and the wallet's balances.

    Cheap (a lookup or two), so integrations can call it to test credentials. ``billing``
    says whether the balances are enforced (``on``) or only informative (``off``).
    """
    who = caller()
    services = current_app.extensions["voxhook"]
    with _db().session() as session:
        found = session.execute(
            select(ApiKey.name, ApiKey.prefix, Account.name.label("account_name"))
            .join(Account, ApiKey.account_id == Account.id)
            .where(ApiKey.id == who.key_id)).one()
        balances = wallet.balances(session, who.account_id, utcnow())
    return {
        "account": {"id": who.account_id, "name": found.account_name},
        "key": {"id": who.key_id, "name": found.name, "prefix": found.prefix},
        "billing": "on" if services.settings.billing_enforced else "off",
        "balances": _render_balances(balances),
    }


def _render_balances(balances: wallet.Balances) -> dict[str, Any]:
    return {
        "monthly_credit_usd": _usd(balances.monthly_credit),
        "credit_remaining_usd": _usd(balances.credit_remaining),
        "topup_usd": _usd(balances.topup),
        "held_usd": _usd(balances.held),
        "available_usd": _usd(balances.available),
        "period": balances.period,
    }


def _usd(micro_usd: int) -> str:
    return str(micro_usd_to_usd(micro_usd))


@blp.route("/keys", methods=["GET"])
@blp.response(200, ApiKeyListSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
def list_account_keys() -> Response:
    """This account's keys, oldest first, revoked ones included; never a secret.

    ``current`` marks the key making the request.
    """
    who = caller()
    with _db().session() as session:
        keys = list_keys(session, who.account_id)
    return jsonify({"object": "list", "data": [
        {**_listed.dump(key), "current": key.id == who.key_id} for key in keys]})


@blp.route("/keys", methods=["POST"])
@blp.arguments(ApiKeyCreateSchema)
@blp.doc(**links(201, RevokeKey=link("/api/v1/keys/{key_id}/revoke", "post", "Revoke it.",
                                     key_id="$response.body#/id")))
@blp.response(201, ApiKeyCreatedSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(422, schema=ApiErrorSchema, description="name is missing, empty or too long.")
def create_account_key(payload: dict[str, Any]) -> Response:
    """Create a key for this account; answers 201 with its ``secret``, shown this once.

    Only the secret's hash is stored: keep it now. The key works at once, on both surfaces.
    """
    with _db().session() as session:
        new = create_key(session, payload["name"].strip(), caller().account_id)
        body = {**_created.dump(new.key), "secret": new.secret}
    response = jsonify(body)
    response.status_code = 201
    return response


@blp.route("/keys/<key_id>/revoke", methods=["POST"])
@blp.response(200, ApiKeySchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description="No such key for this account.")
def revoke_account_key(key_id: str):
    """Revoke one of this account's keys: it stops working at once, everywhere.

    The account's other keys keep working. The key making the request may revoke itself
    (its next request is a 401); revoking every key locks the account out until the
    operator creates a new one (``voxhook keys create``). The key stays listed, with
    ``revoked_at``, and its usage stays in GET /api/v1/usage. Revoking a revoked key
    answers it again, unchanged.
    """
    with _db().session() as session:
        key = revoke_key_of_account(session, caller().account_id, key_id)
        if key is None:
            raise NotFound(f"No key '{key_id}' for this API key's account; GET /api/v1/keys "
                           "lists them.")
    return key


@blp.route("/usage", methods=["GET"])
@blp.arguments(UsageQuerySchema, location="query", unknown=RAISE)
@blp.response(200, UsageSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(422, schema=ApiErrorSchema, description="A date is invalid, start is after "
                  "end, or the range is longer than 366 days.")
def usage(query: dict[str, Any]) -> Response:
    """Spend and audio per key and per UTC day, over ``start``..``end`` (both included).

    Spend is the cost of completed transcriptions (failed and cancelled ones cost nothing),
    counted on the UTC day they completed, as exact decimal dollars; the keys' totals add up
    to the account's. Without dates: the last 30 days, today included. Deleted
    transcriptions are no longer counted here (the wallet's ledger keeps what was charged).
    """
    with _db().session() as session:
        found = account_usage(session, caller().account_id, query["start"], query["end"])
        keys = [{"key": _key.dump(entry.key), "total": _figures(entry.total),
                 "days": _days(entry.days)} for entry in found.keys]
    return jsonify({"object": "usage", "start": found.start.isoformat(),
                    "end": found.end.isoformat(), "total": _figures(found.total),
                    "days": _days(found.days), "keys": keys})


def _figures(figures: Figures) -> dict[str, Any]:
    return {"spend_usd": _usd(figures.spend_micro_usd),
            "audio_seconds": figures.audio_ms / 1000,
            "transcriptions": figures.transcriptions}


def _days(days: dict[Any, Figures]) -> list[dict[str, Any]]:
    return [{"date": day.isoformat(), **_figures(figures)} for day, figures in days.items()]
