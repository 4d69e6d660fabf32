"""API keys: creation, lookup, listing and revocation (used by the CLI, by auth and by the
account's own keys API, ``/api/v1/keys``).

A key is ``sk_live_`` followed by 40 random URL-safe characters. It is shown once; the
database keeps only its SHA-256. A fast hash is right here, unlike for passwords: the secret
has 240 bits of entropy, so there is nothing to brute-force, and every request looks it up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.store.models import DEFAULT_ACCOUNT_ID, Account, ApiKey, new_id, utcnow

KEY_PREFIX = "sk_live_"
KEY_PATTERN = re.compile(r"^sk_live_[A-Za-z0-9_-]{32,128}$")
#: Characters of the secret kept in clear, so a key can be recognised in a list.
DISPLAY_PREFIX_LENGTH = 12


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id and the account it belongs to (what the API's
    authentication finds, and what the services check ownership against)."""

    key_id: str
    account_id: str


class UnknownKeyOrAccount(LookupError):
    """A key or account named on the command line does not exist."""


@dataclass(frozen=True)
class CreatedKey:
    """A new key: its row, and the secret, which exists only in this object."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_key(secret: str) -> bool:
    return bool(KEY_PATTERN.match(secret))


def create_key(session: Session, name: str, account_id: str = DEFAULT_ACCOUNT_ID) -> CreatedKey:
    """Create a key for an account and return it with its secret (never stored)."""
    if session.get(Account, account_id) is None:
        raise UnknownKeyOrAccount(f"no account {account_id!r}; run `voxhook db upgrade` first")
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return CreatedKey(key=key, secret=secret)


def find_active_key_ids(session: Session | Connection, secret: str) -> tuple[str, str] | None:
    """(key id, account id) of the active key with this secret, or None.

    Every authenticated request runs this, so it selects two columns, with revocation
    checked in SQL, instead of loading the ORM object; no result is cached, so a revoked
    key stops working at once in every process.
    """
    if not looks_like_key(secret):
        return None
    row = session.execute(
        select(ApiKey.id, ApiKey.account_id).where(
            ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None))
    ).first()
    return (row[0], row[1]) if row else None


def list_keys(session: Session, account_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    return list(session.scalars(query))


def find_account_key(session: Session, account_id: str, key_id: str) -> ApiKey | None:
    """The account's key ``key_id``; None for an unknown id or another account's key (the
    keys API answers both alike, so key ids of other accounts cannot be probed)."""
    key = session.get(ApiKey, key_id)
    return key if key is not None and key.account_id == account_id else None


def revoke_account_key(session: Session, account_id: str, key_id: str) -> ApiKey | None:
    """Revoke the account's key ``key_id`` at once (idempotent); None when the account has
    no such key. What the keys API and the dashboard both call."""
    key = find_account_key(session, account_id, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key at once (idempotent: revoking twice keeps the first time)."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise UnknownKeyOrAccount(f"no key {key_id!r}; `voxhook keys list` shows the ids")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
