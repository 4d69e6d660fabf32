"""Webhook endpoints, the deliveries owed and every attempt at one."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models.base import Base, utcnow


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
