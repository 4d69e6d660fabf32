"""Authentication: every API request carries a key, in either header style.

``Authorization: <key>`` (the Quickstart surface's style) and ``Authorization: Bearer <key>``
(the v1 surface's) are both accepted everywhere. The key found is put on ``flask.g`` for the
views; a missing, malformed, unknown or revoked key is a 401 that says which of those it was.
"""

from __future__ import annotations

from flask import current_app, g, request

from app.billing.keys import Caller, find_active_key_ids, looks_like_key
from app.errors import Unauthorized


def secret_from_header(header: str | None) -> str:
    """The key in an Authorization header, in either style; 401 when there is none."""
    if not header or not header.strip():
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer sk_live_…'. "
            "Create one with `voxhook keys create --name NAME`."
        )
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    secret = rest.strip() if scheme.lower() == "bearer" else value
    if not looks_like_key(secret):
        raise Unauthorized(
            "Malformed API key: it should look like 'sk_live_' followed by at least 32 "
            "characters, sent as 'Authorization: Bearer <key>' or 'Authorization: <key>'."
        )
    return secret


def authenticate() -> None:
    """``before_request`` hook of the authenticated blueprints: sets ``g.caller``."""
    secret = secret_from_header(request.headers.get("Authorization"))
    with current_app.extensions["voxhook"].db.reading() as connection:
        found = find_active_key_ids(connection, secret)
    if found is None:
        raise Unauthorized("Unknown or revoked API key: check the key, or create a new one.")
    g.caller = Caller(key_id=found[0], account_id=found[1])


def caller() -> Caller:
    return g.caller
