"""Tables: accounts, their API keys, uploads, transcriptions, idempotency records, the money
(wallets, the ledger and reservations; ``app/billing/wallet/`` is their only writer), webhooks
and dashboard sessions, one module per group; every name is importable from here.

Schema changes go through the Alembic migrations in ``app/store/migrations``; these classes and
the newest migration must describe the same tables (a test compares them).
"""

from __future__ import annotations

from app.store.models.accounts import (
    Account,
    ApiKey,
    DashboardSession,
    DashboardSessionKind,
)
from app.store.models.base import (
    DEFAULT_ACCOUNT_ID,
    Base,
    as_utc,
    new_id,
    utcnow,
)
from app.store.models.money import (
    LedgerEntry,
    LedgerKind,
    Pocket,
    Reservation,
    ReservationStatus,
    Wallet,
)
from app.store.models.transcriptions import (
    IdempotencyRecord,
    Surface,
    Transcription,
    TranscriptionStatus,
    Upload,
    UploadStatus,
)
from app.store.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "Account",
    "ApiKey",
    "Base",
    "DashboardSession",
    "DashboardSessionKind",
    "DeliveryStatus",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerKind",
    "Pocket",
    "Reservation",
    "ReservationStatus",
    "Surface",
    "Transcription",
    "TranscriptionStatus",
    "Upload",
    "UploadStatus",
    "Wallet",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "as_utc",
    "new_id",
    "utcnow",
]
