"""Accounts, their API keys, and the dashboard's signed-in browsers."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.store.models.base import Base, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Signs this account's webhook deliveries (Standard Webhooks, ``whsec_…``); made on
    #: first use. Needed in clear to sign, so it is never logged or shown but on request.
    webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    #: The secret before the last rotation: deliveries are signed with both for a while
    #: (until ``webhook_secret_previous_until``), so receivers can switch without a gap.
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(100), default=None)
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(default=None)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="account")


class ApiKey(Base):
    """An API key. Only the SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The first characters of the secret (``sk_live_ab12``), so people can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(back_populates="keys")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class DashboardSessionKind(enum.StrEnum):
    """Who a dashboard session is for: an account holder (signed in with one of the
    account's keys) or the operator (signed in with ``VOXHOOK_ADMIN_TOKEN``)."""

    ACCOUNT = "account"
    OPERATOR = "operator"


class DashboardSession(Base):
    """A signed-in browser of the dashboard (``app/dashboard/sessions.py``).

    The browser holds only a signed cookie naming the session; this row holds what it
    stands for. An account session keeps the *id* of the key it was opened with, never the
    key itself, and every request checks that key is still active, so revoking it ends the
    session at the next request. An operator session keeps a fingerprint of the admin token
    it was opened with, so changing the token ends it. The row id is the SHA-256 of the
    cookie's session token, so a copy of this table opens no session.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True,
                                                   default=None)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    #: HMAC of the admin token the operator signed in with (operator sessions only).
    operator_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The synchronizer token every form and script request of this session must carry.
    csrf_token: Mapped[str] = mapped_column(String(64))
    #: Messages for the next page ("Key revoked."), shown once; never a secret.
    notices: Mapped[list[list[str]] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
