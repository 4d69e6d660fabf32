"""What a webhook subscription receives: Standard Webhooks' envelope around the v1 body.

The outbox (``app.webhooks.events``) fills it; the API names it in /openapi.json (no view
answers it) and validates subscriptions' event names against :data:`WEBHOOK_EVENTS`.
"""

from __future__ import annotations

from marshmallow import (
    Schema,
    fields,
)

from app.store.models import WebhookEvent
from app.transcriptions.representation import (
    UtcDateTime,
    V1TranscriptionSchema,
)

#: What an endpoint can subscribe to (the ``type`` of the envelope it receives).
WEBHOOK_EVENTS = tuple(str(event) for event in WebhookEvent)


class WebhookEventEnvelopeSchema(Schema):
    """What a webhook endpoint receives: Standard Webhooks' recommended shape, signed like
    every webhook (see WebhookSecret)."""

    type = fields.String(required=True, metadata={
        "enum": list(WEBHOOK_EVENTS), "description": "What happened."})
    timestamp = UtcDateTime(required=True, metadata={"description": "When it happened."})
    data = fields.Nested(V1TranscriptionSchema, required=True, metadata={
        "description": "The transcription, as GET /api/v1/transcriptions/{id} answers it."})
