"""The webhook outbox: when a transcription ends, write down what is to be sent, and to whom.

:func:`record_transcription_event` runs in the worker, *inside* the transaction that makes the
transcription final. The deliveries it adds commit together with the result, so an event
can neither be lost (a crash after the commit finds the rows waiting) nor announce a result
that was rolled back. The webhook dispatcher (``worker/webhooks/dispatcher.py``) sends the rows
whose ``next_attempt_at`` has come; the worker rings its doorbell after the commit so it
does not wait for its next poll.

Each body is decided here, once, and stored: every attempt sends the same bytes, under the
same ``webhook-id`` (the delivery's id), so receivers can drop duplicates and signatures
always cover what was first decided.

- The transcription's own ``webhook_url`` gets exactly the JSON that the GET of the surface
  that created it answers (``GET /transcribe/{id}`` or ``GET /api/v1/transcriptions/{id}``):
  a script that polls and one that waits for the webhook read the same thing.
- Each live subscription (``/api/v1/webhook_endpoints``) of the account that asked for the
  event gets the Standard Webhooks envelope ``{"type", "timestamp", "data"}``, ``data`` being
  the v1 GET body (what n8n and Zapier triggers read).

Only ``completed`` and ``failed`` are announced: a ``cancelled`` transcription was stopped by
its own user, who needs no telling. Pure SQLAlchemy and marshmallow, no Flask: the worker
imports it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import (
    DeliveryStatus,
    Surface,
    Transcription,
    TranscriptionStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    new_id,
)
from app.transcriptions.representation import QuickstartTranscriptionSchema, V1TranscriptionSchema
from app.webhooks.envelope import WebhookEventEnvelopeSchema

log = logging.getLogger(__name__)

#: The event each final status announces; other statuses announce nothing.
EVENTS = {
    TranscriptionStatus.COMPLETED: WebhookEvent.TRANSCRIPTION_COMPLETED,
    TranscriptionStatus.FAILED: WebhookEvent.TRANSCRIPTION_FAILED,
}

_quickstart = QuickstartTranscriptionSchema()
_v1 = V1TranscriptionSchema()
_envelope = WebhookEventEnvelopeSchema()


def event_for(transcription: Transcription) -> WebhookEvent | None:
    """The event a transcription in its current status announces (None: nothing to say)."""
    if transcription.deleted_at is not None:
        return None
    return EVENTS.get(TranscriptionStatus(transcription.status))


def record_transcription_event(session: Session, transcription: Transcription,
                               now: datetime) -> list[WebhookDelivery]:
    """Add the deliveries that announce ``transcription``'s final status; returns them.

    Call it in the transaction that makes the row ``completed`` or ``failed``, after the
    row's final values are set, and ring the dispatcher's doorbell once that transaction
    has committed when the list is not empty. ``now`` is the event's time: the envelope's
    ``timestamp`` and when the first attempt is due.

    Safe to call twice: an event already recorded for the transcription is not recorded
    again (an empty list comes back).
    """
    event = event_for(transcription)
    if event is None:
        return []
    already = session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.transcription_id == transcription.id,
        WebhookDelivery.event == event).limit(1))
    if already is not None:
        return []
    endpoints = _subscribed(session, transcription.account_id, event)
    if not transcription.webhook_url and not endpoints:
        return []
    # Dump what the database holds, as a GET would read it (timestamps included).
    session.flush()
    session.refresh(transcription)
    deliveries = []
    if transcription.webhook_url:
        deliveries.append(_delivery(transcription, event, None, transcription.webhook_url,
                                    surface_body(transcription), now))
    if endpoints:
        envelope = serialise(_envelope.dump(
            {"type": str(event), "timestamp": now, "data": transcription}))
        deliveries.extend(_delivery(transcription, event, endpoint.id, endpoint.url,
                                    envelope, now) for endpoint in endpoints)
    session.add_all(deliveries)
    log.info("transcription %s: %s recorded for %d webhook(s)", transcription.id, event,
             len(deliveries))
    return deliveries


def surface_body(transcription: Transcription) -> str:
    """The JSON the GET of the transcription's own surface answers, as sent."""
    schema = _quickstart if transcription.surface == Surface.QUICKSTART else _v1
    return serialise(schema.dump(transcription))


def serialise(body: dict[str, Any]) -> str:
    """Compact JSON, non-ASCII kept as UTF-8 (the body is sent as its UTF-8 bytes)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _subscribed(session: Session, account_id: str, event: WebhookEvent
                ) -> list[WebhookEndpoint]:
    """The account's live endpoints that asked for ``event``, oldest first.

    ``events`` is a JSON list, so the filter runs here rather than in SQL (portable across
    SQLite and PostgreSQL; an account has a handful of endpoints).
    """
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))
    return [endpoint for endpoint in endpoints if str(event) in (endpoint.events or [])]


def _delivery(transcription: Transcription, event: WebhookEvent, endpoint_id: str | None,
              url: str, body: str, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("msg"), account_id=transcription.account_id,
        transcription_id=transcription.id, endpoint_id=endpoint_id, url=url,
        event=str(event), body=body, status=DeliveryStatus.PENDING, attempts=0,
        next_attempt_at=now, created_at=now)
