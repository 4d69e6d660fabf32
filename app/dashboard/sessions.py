"""Dashboard sessions: a key (or the admin token) pasted once, exchanged for a server-side
session named by a signed cookie.

Why it is built this way:

- **The browser never keeps the key.** Signing in checks the key like any API request
  (:func:`app.billing.keys.find_active_key_ids`) and stores the key's *id* in a
  ``dashboard_sessions`` row; the cookie carries only a random session token, signed with
  the key that signs upload URLs (``VOXHOOK_SECRET_KEY``, :mod:`app.media.signing`) for a
  purpose of its own, so it is worthless as an upload signature and vice versa.
- **Revocation is immediate.** Every request looks the session up and checks, in the same
  query, that its key is still active: a key revoked through the API, the CLI or the
  dashboard ends its sessions at their next request. An operator session keeps an HMAC of
  the admin token it was opened with; a changed (or removed) token ends it.
- **Nothing useful leaks from the table.** Its primary key is the SHA-256 of the cookie's
  token, so reading the table opens no session.
- Sessions end after :data:`IDLE_S` without a request, and :data:`MAX_AGE_S` after sign-in
  whatever happens.

No Flask here: the views hand over the cookie's value and the settings' secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.billing.keys import find_active_key_ids
from app.media import signing
from app.store.db import Database
from app.store.models import ApiKey, DashboardSession, DashboardSessionKind, as_utc, utcnow

#: The cookie naming the session; scoped to ``/dashboard``.
COOKIE_NAME = "voxhook_dashboard"
#: What a session signature is for: a signature of another purpose never matches it.
SESSION_PURPOSE = "dashboard-session"
OPERATOR_PURPOSE = "dashboard-operator"
#: A session ends this long after sign-in, however busy it is.
MAX_AGE_S = 12 * 3600
#: ... or this long after its last request.
IDLE_S = 2 * 3600
#: ``last_seen_at`` is written at most this often (not on every request).
TOUCH_EVERY_S = 60


class SessionEnded(Exception):
    """The cookie names a session that has just ended; ``reason`` says why, for the sign-in
    page: ``revoked`` (its key was revoked), ``expired``, ``operator_token_changed``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActiveSession:
    """A live session, as the views see it."""

    id: str
    kind: DashboardSessionKind
    account_id: str | None
    api_key_id: str | None
    csrf_token: str
    notices: tuple[tuple[str, str], ...] = ()

    @property
    def is_operator(self) -> bool:
        return self.kind == DashboardSessionKind.OPERATOR


@dataclass(frozen=True)
class Opened:
    """A new session and the cookie value that names it (the only copy of its token)."""

    session: ActiveSession
    cookie: str
    max_age_s: int


def _row_id(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class DashboardSessions:
    """Open, find and end dashboard sessions in ``db``; ``key`` signs the cookies."""

    def __init__(self, db: Database, key: bytes, admin_token: str = "") -> None:
        self.db = db
        self.key = key
        self.admin_token = admin_token

    # ----------------------------------------------------------------- cookies

    def cookie_for(self, token: str, expires: int) -> str:
        """``token.expires.signature``: the token, when it stops being honoured, and the
        HMAC over both."""
        return f"{token}.{expires}.{signing.sign(self.key, SESSION_PURPOSE, token, expires)}"

    def token_from(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session token of a genuine, unexpired cookie; None for anything else."""
        if not cookie:
            return None
        token, _, rest = cookie.partition(".")
        expires, _, signature = rest.partition(".")
        try:
            signing.verify(self.key, SESSION_PURPOSE, token, expires, signature, now)
        except signing.SignatureError:
            return None
        return token

    def operator_fingerprint(self, token: str) -> str:
        return hmac.new(self.key, f"{OPERATOR_PURPOSE}\n{token}".encode(),
                        hashlib.sha256).hexdigest()

    # ----------------------------------------------------------------- sign in

    def open_for_key(self, secret: str) -> Opened | None:
        """A session for the account of this active key; None when the key is malformed,
        unknown or revoked."""
        with self.db.session() as session:
            found = find_active_key_ids(session, secret.strip())
            if found is None:
                return None
            return self._open(session, DashboardSessionKind.ACCOUNT, api_key_id=found[0],
                              account_id=found[1])

    def open_for_operator(self, token: str) -> Opened | None:
        """An operator session when ``token`` is the admin token (compared in constant
        time, as the admin API does); None otherwise or when none is configured."""
        if not self.admin_token or not hmac.compare_digest(
                token.strip().encode("utf-8"), self.admin_token.encode("utf-8")):
            return None
        with self.db.session() as session:
            return self._open(session, DashboardSessionKind.OPERATOR,
                              operator_fingerprint=self.operator_fingerprint(self.admin_token))

    def _open(self, session: Session, kind: DashboardSessionKind, **fields: str) -> Opened:
        now = utcnow()
        session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now)
                        .execution_options(synchronize_session=False))
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=MAX_AGE_S)
        row = DashboardSession(id=_row_id(token), kind=kind, csrf_token=secrets.token_urlsafe(32),
                               created_at=now, last_seen_at=now, expires_at=expires, **fields)
        session.add(row)
        session.flush()
        return Opened(self._active(row, ()), self.cookie_for(token, int(expires.timestamp())),
                      MAX_AGE_S)

    # ----------------------------------------------------------------- each request

    def find(self, cookie: str | None) -> ActiveSession | None:
        """The live session the cookie names, its pending notices taken; None when there is
        none; :class:`SessionEnded` when it ended just now (the row is then deleted)."""
        token = self.token_from(cookie)
        if token is None:
            return None
        now = utcnow()
        with self.db.session() as session:
            row = session.get(DashboardSession, _row_id(token))
            if row is None:
                return None
            reason = self._why_ended(session, row, now)
            if reason is not None:
                session.delete(row)
                if reason == "revoked":  # the key's other sessions end as well
                    session.execute(delete(DashboardSession)
                                    .where(DashboardSession.api_key_id == row.api_key_id)
                                    .execution_options(synchronize_session=False))
                # Committed before the exception leaves the block: raising inside it would
                # roll the deletion back.
                ended = SessionEnded(reason)
            else:
                ended = None
                notices = tuple((level, text) for level, text in row.notices or ())
                if notices:
                    row.notices = None
                if (now - as_utc(row.last_seen_at)).total_seconds() >= TOUCH_EVERY_S:
                    row.last_seen_at = now
                active = self._active(row, notices)
        if ended is not None:
            raise ended
        return active

    def _why_ended(self, session: Session, row: DashboardSession, now: datetime) -> str | None:
        idle_s = (now - as_utc(row.last_seen_at)).total_seconds()
        if as_utc(row.expires_at) <= now or idle_s > IDLE_S:
            return "expired"
        if row.kind == DashboardSessionKind.OPERATOR:
            current = self.operator_fingerprint(self.admin_token) if self.admin_token else ""
            if not hmac.compare_digest(current, row.operator_fingerprint or "-"):
                return "operator_token_changed"
            return None
        key = session.execute(select(ApiKey.id, ApiKey.revoked_at)
                              .where(ApiKey.id == row.api_key_id)).first()
        return None if key is not None and key.revoked_at is None else "revoked"

    def notify(self, session_id: str, level: str, text: str) -> None:
        """Queue a message for the session's next page (post, redirect, get)."""
        with self.db.session() as session:
            row = session.get(DashboardSession, session_id)
            if row is not None:
                row.notices = [*(row.notices or []), [level, text]]

    def end(self, cookie: str | None) -> None:
        """Sign out: the session's row goes, so the cookie opens nothing, even replayed."""
        token = self.token_from(cookie)
        if token is None:
            return
        with self.db.session() as session:
            session.execute(delete(DashboardSession)
                            .where(DashboardSession.id == _row_id(token))
                            .execution_options(synchronize_session=False))

    @staticmethod
    def _active(row: DashboardSession, notices: tuple[tuple[str, str], ...]) -> ActiveSession:
        return ActiveSession(id=row.id, kind=DashboardSessionKind(row.kind),
                             account_id=row.account_id, api_key_id=row.api_key_id,
                             csrf_token=row.csrf_token, notices=notices)
