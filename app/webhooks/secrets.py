"""An account's webhook signing secrets, made on first use.

Both the API (showing the secret) and the webhook worker (signing) may be the first to need
an account's secret, at the same moment. The secret is created with a conditional UPDATE
(only where none is set), and everyone reads back what the database kept, so concurrent
creators agree on one secret. Secrets are never logged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.store.models import Account, as_utc
from app.webhooks.signing import new_secret


def ensure_secret(session: Session, account_id: str) -> str:
    """The account's current signing secret, created if it has none (KeyError: no account)."""
    current = session.execute(
        select(Account.webhook_secret).where(Account.id == account_id)).one_or_none()
    if current is None:
        raise KeyError(account_id)
    if current[0]:
        return current[0]
    session.execute(update(Account)
                    .where(Account.id == account_id, Account.webhook_secret.is_(None))
                    .values(webhook_secret=new_secret())
                    .execution_options(synchronize_session=False))
    kept = session.execute(select(Account.webhook_secret).where(Account.id == account_id))
    return kept.scalar_one()


def signing_secrets(session: Session, account_id: str, now: datetime) -> list[str]:
    """The secrets that sign a delivery made at ``now``: the current one, and the previous
    one while a rotation's overlap lasts."""
    current = ensure_secret(session, account_id)
    previous, until = session.execute(
        select(Account.webhook_secret_previous, Account.webhook_secret_previous_until)
        .where(Account.id == account_id)).one()
    if previous and until is not None and as_utc(until) > now and previous != current:
        return [current, previous]
    return [current]


