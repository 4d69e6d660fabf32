"""``/api/v1/webhook_endpoints``, their deliveries, and the account's signing secret."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
)

from app.api.schemas.common import (
    WEBHOOK_SIGNING,
    Text,
    validate_http_url,
)
from app.transcriptions.representation import (
    UtcDateTime,
)
from app.webhooks.envelope import WEBHOOK_EVENTS


def validate_events(value: list[str]) -> None:
    """At least one event, each one we send; every unknown one is named."""
    if not value:
        raise ValidationError(f"Must not be empty: choose one or more of "
                              f"{', '.join(WEBHOOK_EVENTS)} (or leave events out for all).")
    unknown = [event for event in value if event not in WEBHOOK_EVENTS]
    if unknown:
        raise ValidationError(f"Unknown event {', '.join(map(repr, unknown))}: choose one or "
                              f"more of {', '.join(WEBHOOK_EVENTS)}.")


class WebhookEndpointCreateSchema(Schema):
    """Body of ``POST /api/v1/webhook_endpoints``."""

    url = Text(
        required=True, validate=validate_http_url,
        error_messages={"required": "Missing: the http(s) URL to POST events to (e.g. an n8n "
                        "trigger's or a Zapier REST hook's URL)."},
        metadata={"description": "Where to POST each event (the WebhookEventEnvelope), "
                  "used exactly as given, query string included. Its host must resolve to "
                  "public addresses only (checked now and at every attempt). "
                  + WEBHOOK_SIGNING})
    events = fields.List(
        Text(), validate=validate_events, load_default=lambda: list(WEBHOOK_EVENTS),
        metadata={"description": "Which events to receive: "
                  f"{', '.join(WEBHOOK_EVENTS)}; default: all."})
    description = Text(
        allow_none=True, load_default=None, validate=validate.Length(max=200),
        metadata={"description": "What it is for, for your records (at most 200 "
                  "characters)."})

    @post_load
    def _distinct_events(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "events": list(dict.fromkeys(data["events"]))}


class WebhookEndpointSchema(Schema):
    """An account's subscription: every matching event of the account is POSTed to it."""

    id = fields.String(required=True, metadata={"description": "we_…"})
    object = fields.Constant("webhook_endpoint")
    url = fields.String(required=True)
    events = fields.List(fields.String(metadata={"enum": list(WEBHOOK_EVENTS)}))
    description = fields.String(allow_none=True)
    created_at = UtcDateTime()


class WebhookEndpointListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(WebhookEndpointSchema), metadata={
        "description": "The account's endpoints, oldest first (deleted ones are not listed)."})


class WebhookEndpointDeletedSchema(Schema):
    """``DELETE /api/v1/webhook_endpoints/{id}``."""

    id = fields.String(required=True)
    object = fields.Constant("webhook_endpoint")
    deleted = fields.Constant(True)


class WebhookAttemptSchema(Schema):
    """One try at a delivery."""

    attempted_at = UtcDateTime()
    status_code = fields.Integer(allow_none=True, metadata={
        "description": "The receiver's HTTP status; null when none came back (refused "
        "address, connection error, timeout: see error)."})
    latency_ms = fields.Integer(metadata={"description": "From sending to the answer."})
    error = fields.String(allow_none=True, metadata={
        "description": "Why it failed, when it did."})
    next_attempt_at = UtcDateTime(allow_none=True, metadata={
        "description": "When the next attempt was scheduled; null when this one ended the "
        "delivery (delivered, refused for good, or out of retries)."})


class WebhookDeliverySchema(Schema):
    """One message to one URL, with every attempt to deliver it."""

    id = fields.String(required=True, metadata={
        "description": "msg_…: the webhook-id header, the same on every attempt."})
    object = fields.Constant("webhook_delivery")
    event = fields.String(metadata={"enum": list(WEBHOOK_EVENTS)})
    url = fields.String()
    endpoint_id = fields.String(allow_none=True, metadata={
        "description": "The subscription it went to; null for the transcription's own "
        "webhook_url."})
    status = fields.String(metadata={
        "enum": ["pending", "delivered", "failed"],
        "description": "pending (an attempt is due at next_attempt_at), delivered (a 2xx "
        "came back) or failed (refused for good, out of retries, or its endpoint was "
        "deleted: see last_error)."})
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    delivered_at = UtcDateTime(allow_none=True, metadata={
        "description": "When a 2xx last came back."})
    attempts = fields.List(fields.Nested(WebhookAttemptSchema), metadata={
        "description": "Every attempt, oldest first."})


class WebhookDeliveryListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(WebhookDeliverySchema), metadata={
        "description": "Oldest first: the transcription's own webhook_url, then each "
        "subscription."})


class WebhookSecretSchema(Schema):
    """``GET /api/v1/webhook_secret``: what receivers verify signatures with."""

    object = fields.Constant("webhook_secret")
    secret = fields.String(required=True, metadata={
        "description": "whsec_… followed by base64 of the key bytes (Standard Webhooks)."})
    previous_valid_until = UtcDateTime(allow_none=True, metadata={
        "description": "After a rotation: deliveries also carry a signature by the previous "
        "secret until then, so receivers can switch without missing one; null otherwise."})
