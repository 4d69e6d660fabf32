"""Tables: accounts, their API keys, uploads, transcriptions, idempotency records, and the
money: wallets, the ledger and reservations (``app/billing/wallet/`` is their only writer).

Schema changes go through the Alembic migrations in ``app/migrations``; these classes and
the newest migration must describe the same tables (a test compares them).
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: The account every fresh installation has, so a newcomer can create a key at once.
DEFAULT_ACCOUNT_ID = "acct_default"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what every timestamp column stores)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time, timezone-aware: SQLite gives back naive datetimes, all of them UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``tr_3f9k…`` (prefix says what it names)."""
    return f"{prefix}_{secrets.token_hex(12)}"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class TranscriptionStatus(enum.StrEnum):
    """Where a transcription is; ``completed``, ``failed`` and ``cancelled`` are final.

    ``cancelled``: the user stopped it (``POST /api/v1/transcriptions/{id}/cancel``) while it
    was queued or processing; it costs nothing. The Quickstart surface, whose contract knows
    only the other four, shows it as ``failed`` with ``error_code`` ``cancelled``.
    """

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (TranscriptionStatus.COMPLETED, TranscriptionStatus.FAILED,
                        TranscriptionStatus.CANCELLED)

    @classmethod
    def unfinished(cls) -> tuple[TranscriptionStatus, ...]:
        """The statuses a job can still leave (what a cancellation may stop)."""
        return (cls.QUEUED, cls.PROCESSING)


class UploadStatus(enum.StrEnum):
    """Where an upload is: ``pending`` (no file yet) → ``uploaded`` → ``used`` (a
    transcription took it) → ``deleted`` (its file is gone). ``expired``: its URL expired
    before a file arrived, so it can never have one."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    USED = "used"
    DELETED = "deleted"
    EXPIRED = "expired"


class Surface(enum.StrEnum):
    """Which HTTP contract created a transcription (it decides the response shape)."""

    QUICKSTART = "quickstart"
    V1 = "v1"


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


class Upload(Base):
    """A file sent to the service directly (SPEC.md section 5) instead of a URL.

    Created ``pending`` with a signed upload URL; the PUT of the bytes stores the file and
    makes it ``uploaded``; a transcription then claims it (``used``) exactly once. The file
    itself is in media storage under ``storage_key``.
    """

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.PENDING)
    #: What the client called the file (metadata only; never a path on the server).
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: Hex SHA-256 of the stored bytes, for the client to compare with its own.
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: Where the bytes are in media storage (``uploads/up_…-…``); None until received.
    storage_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the signed upload URL stops working.
    url_expires_at: Mapped[datetime]
    uploaded_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The transcription that used it. No foreign key: ``transcriptions.upload_id`` is the
    #: enforced side, and a key both ways would be a cycle between the two tables.
    transcription_id: Mapped[str | None] = mapped_column(String(40))
    #: When an uploaded file that no transcription used is deleted.
    delete_after: Mapped[datetime | None] = mapped_column(default=None, index=True)


class Transcription(Base):
    """One request to transcribe a file, from creation to its result or error."""

    __tablename__ = "transcriptions"
    __table_args__ = (
        #: The listing's order within an account (GET /api/v1/transcriptions): newest first,
        #: keyset-paginated on (created_at, id).
        Index("ix_transcriptions_account_created_id", "account_id", "created_at", "id"),
        #: The recovery passes look for queued and processing rows (app/transcriptions/recovery.py).
        Index("ix_transcriptions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    surface: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TranscriptionStatus.QUEUED)
    source: Mapped[str] = mapped_column(String(16), default="external_url")
    url: Mapped[str | None] = mapped_column(Text)
    #: With source ``upload``: the upload it transcribes (each upload serves one transcription).
    upload_id: Mapped[str | None] = mapped_column(ForeignKey("uploads.id"), unique=True,
                                                  index=True)
    #: Media kept after the job for the retention time (VOXHOOK_MEDIA_RETENTION_HOURS):
    #: its storage key and when it is deleted; None when nothing is kept.
    media_key: Mapped[str | None] = mapped_column(String(200))
    media_delete_after: Mapped[datetime | None] = mapped_column(default=None, index=True)
    #: Set by DELETE: the transcript and media are gone and the API answers 404, but the row
    #: keeps what was spent (key, duration, cost), so usage still adds up.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    pipeline_code: Mapped[str] = mapped_column(String(100))
    #: The ISO 639-1 code the client gave; None means detect.
    language: Mapped[str | None] = mapped_column(String(8))
    align: Mapped[bool] = mapped_column(Boolean, default=True)
    diarize: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The exact number of speakers the client gave (diarize only).
    speaker_count: Mapped[int | None] = mapped_column(Integer)
    #: Bounds on the number of speakers (v1 surface, diarize only).
    min_speakers: Mapped[int | None] = mapped_column(Integer)
    max_speakers: Mapped[int | None] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    #: 0..1, how far the engine has come through the audio while processing.
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    audio_duration_seconds: Mapped[float | None] = mapped_column(Float)
    #: Cost in micro-dollars (1e-6 USD), exact; None until the duration is known.
    cost_micro_usd: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: How the engine runs beyond the pipeline (``app.transcriptions.engine_options``):
    #: task, initial prompt, temperature, known speakers. None: the pipeline's settings.
    engine_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    #: The worker that ran it (host:pid), for operators following a job through the logs.
    worker_name: Mapped[str | None] = mapped_column(String(200))
    #: The RQ job last enqueued for it; None: the transcription's own id (the first job).
    #: Each enqueue after the first gets a new id, so a lost job's leftovers in Redis never
    #: mix with its successor's (see app/transcriptions/recovery.py).
    queue_job_id: Mapped[str | None] = mapped_column(String(60), default=None)
    #: When it was last put on the queue; None: at ``created_at``.
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The last sign of life of the worker processing it (stamped every heartbeat); a
    #: processing row whose stamp is too old has lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    #: How many times a worker died while processing it (it is retried once, then failed).
    worker_losses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyRecord(Base):
    """The first response to a POST with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path and canonical body: a repeat must match it.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    transcription_id: Mapped[str | None] = mapped_column(ForeignKey("transcriptions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerKind(enum.StrEnum):
    """Why money moved; every change of a balance is one ledger entry of one of these."""

    #: The monthly credit granted at the start of a calendar month (positive, pocket credit).
    CREDIT_GRANT = "credit_grant"
    #: Monthly credit left unused when its month ended (negative, pocket credit).
    CREDIT_EXPIRY = "credit_expiry"
    #: Money the operator added to the top-up balance (positive, pocket topup).
    TOPUP = "topup"
    #: A finished transcription paid for (negative; one entry per pocket it drew on).
    CHARGE = "charge"
    #: A charge given back by the operator (positive).
    REFUND = "refund"
    #: An operator's correction, either sign.
    ADJUSTMENT = "adjustment"


class Pocket(enum.StrEnum):
    """The two balances of a wallet; spending draws on ``credit`` first, then ``topup``."""

    CREDIT = "credit"
    TOPUP = "topup"


class ReservationStatus(enum.StrEnum):
    """``held`` → ``charged`` (the job completed) or ``released`` (it failed or was
    cancelled); an operator may later turn ``charged`` into ``refunded``. Each change is a
    conditional UPDATE from the status before, so it happens once however often it is tried."""

    HELD = "held"
    CHARGED = "charged"
    RELEASED = "released"
    REFUNDED = "refunded"


class Wallet(Base):
    """An account's money, cached from the ledger (``voxhook wallet audit`` proves they agree).

    Amounts are micro-dollars. ``held_*`` is the part of each balance promised to running
    jobs; what can be spent is ``credit + topup - held_credit - held_topup``. The CHECK
    constraints make a negative balance, or a hold larger than its balance, impossible even
    for a buggy writer.
    """

    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("credit_micro_usd >= held_credit_micro_usd", name="ck_wallets_credit"),
        CheckConstraint("topup_micro_usd >= held_topup_micro_usd", name="ck_wallets_topup"),
        CheckConstraint("held_credit_micro_usd >= 0 AND held_topup_micro_usd >= 0",
                        name="ck_wallets_held"),
        CheckConstraint("monthly_credit_micro_usd >= 0", name="ck_wallets_monthly_credit"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    #: What is granted at the start of every calendar month (UTC); unused credit expires.
    monthly_credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The month (``YYYY-MM``, UTC) of the last grant; None until the first one.
    credit_period: Mapped[str | None] = mapped_column(String(7))
    #: Monthly credit left this period (held part included).
    credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    held_credit_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    held_topup_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One change of one balance (signed micro-dollars); never updated, never deleted.

    ``transcription_id`` has no foreign key, so deleting a transcription keeps the money
    history. The unique constraint makes a second charge (or refund) of one transcription
    from one pocket impossible at the database level; NULL ids (grants, top-ups) never
    collide.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("transcription_id", "kind", "pocket",
                         name="uq_ledger_transcription_kind_pocket"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    pocket: Mapped[str] = mapped_column(String(8))
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    transcription_id: Mapped[str | None] = mapped_column(String(40))
    #: The key whose job it was (charges, refunds): spend per key.
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    #: The month (``YYYY-MM``) a grant or expiry belongs to.
    period: Mapped[str | None] = mapped_column(String(7))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(Base):
    """Money held for one transcription from when its cost is known until it ends.

    The split between the pockets is decided when it is made (credit first) and charged or
    released exactly as made. ``credit_period`` is the month whose credit it holds: credit
    released after that month ended expires instead of returning.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("from_credit_micro_usd >= 0 AND from_topup_micro_usd >= 0 AND "
                        "amount_micro_usd = from_credit_micro_usd + from_topup_micro_usd",
                        name="ck_reservations_split"),
        Index("ix_reservations_account_id_status", "account_id", "status"),
    )

    transcription_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    from_credit_micro_usd: Mapped[int] = mapped_column(BigInteger)
    from_topup_micro_usd: Mapped[int] = mapped_column(BigInteger)
    credit_period: Mapped[str | None] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default=ReservationStatus.HELD)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookEvent(enum.StrEnum):
    """What a webhook announces."""

    TRANSCRIPTION_COMPLETED = "transcription.completed"
    TRANSCRIPTION_FAILED = "transcription.failed"


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery is: ``pending`` (an attempt is due at ``next_attempt_at``)
    → ``delivered`` (a 2xx) or ``failed`` (a final refusal, or out of retries)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    """An account-level subscription: every matching event of the account is POSTed here."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    #: The :class:`WebhookEvent` values it wants.
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set by DELETE: no new deliveries; its history stays readable.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookDelivery(Base):
    """One message to one URL (the ``webhook-id`` receivers deduplicate on), with every
    attempt to deliver it. The body is fixed when the event happens and sent byte for byte
    on every attempt, so each attempt's signature covers the same bytes."""

    __tablename__ = "webhook_deliveries"

    #: ``msg_…``: the Standard Webhooks ``webhook-id``, the same on every attempt.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: No foreign key: deleting a transcription keeps the record of what was sent.
    transcription_id: Mapped[str] = mapped_column(String(40), index=True)
    #: None for the transcription's own ``webhook_url``; else the subscription.
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id"))
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(40))
    #: The exact bytes POSTed (UTF-8 JSON), decided once.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    #: A dispatcher that took the delivery holds it until then (a crashed one lets go).
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One try at a delivery: when, what came back, how long it took, what is next."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The start of the receiver's answer (read up to a small bound, never more).
    response_excerpt: Mapped[str | None] = mapped_column(Text, default=None)
    #: When the next attempt is due; None when this one ended the delivery.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)


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
