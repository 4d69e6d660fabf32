"""Transcriptions, the uploads they may come from, and idempotency records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models.base import Base, utcnow


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
