"""Accounts: creation and listing, for the operator (CLI and admin API).

An account owns keys, transcriptions and one wallet; creating one opens its wallet, with its
first monthly credit granted at once. Accounts are never deleted: their money history stays.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.billing.wallet import WalletError, open_wallet
from app.store.models import Account, new_id, utcnow

#: What an account id may look like: it appears in URLs, logs and the command line.
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
MAX_NAME_LENGTH = 200


class AccountError(WalletError, ValueError):
    """An account that cannot be created as asked; ``field`` is the one at fault (``name``
    or ``id``), the message says what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AccountExists(AccountError):
    def __init__(self, account_id: str) -> None:
        super().__init__("id", f"an account {account_id!r} exists already; choose another "
                         "id, or leave it out to get a new one")
        self.account_id = account_id


def create_account(session: Session, name: str, account_id: str | None = None,
                   monthly_credit_micro_usd: int = 0, now: datetime | None = None) -> Account:
    """A new account with its wallet; ``account_id`` defaults to a random ``acct_…``."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AccountError("name", f"name must be 1 to {MAX_NAME_LENGTH} characters")
    account_id = account_id if account_id is not None else new_id("acct")
    if not ACCOUNT_ID_PATTERN.match(account_id):
        raise AccountError("id", f"id must be 1 to 40 letters, digits, '_' or '-' (starting "
                                 f"with a letter or digit), not {account_id!r}")
    if session.get(Account, account_id) is not None:
        raise AccountExists(account_id)
    now = now or utcnow()
    account = Account(id=account_id, name=name, created_at=now)
    session.add(account)
    try:
        session.flush()
    except IntegrityError:  # created concurrently; the caller's transaction rolls back
        raise AccountExists(account_id) from None
    open_wallet(session, account_id, monthly_credit_micro_usd, now)
    return account


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.created_at, Account.id)))


def get_account(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)
