"""Webhooks on the v1 surface: subscriptions (``/api/v1/webhook_endpoints``), each
transcription's deliveries with resend, and the account's signing secret (SPEC.md §6).

Thin views: :class:`app.webhooks.service.WebhookService` does the work; the schemas in
:mod:`app.api.schemas` are the contract (and the OpenAPI document).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from app.api.auth import authenticate, caller
from app.api.openapi import link, links, webhook_callback
from app.api.schemas.common import ApiErrorSchema
from app.api.schemas.webhooks import (
    WebhookDeliveryListSchema,
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointDeletedSchema,
    WebhookEndpointListSchema,
    WebhookEndpointSchema,
    WebhookSecretSchema,
)
from app.webhooks.envelope import WebhookEventEnvelopeSchema
from app.webhooks.service import MAX_ENDPOINTS, WebhookService

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1",
                description="Webhooks: subscriptions, delivery history and resend, the "
                "signing secret; Bearer keys.")
blp.before_request(authenticate)

_UNAUTHORIZED = "Missing, unknown or revoked key."
_ONE_ENDPOINT = "/api/v1/webhook_endpoints/{endpoint_id}"
_NEW_ID = "$response.body#/id"
_NO_ENDPOINT = "No such webhook endpoint for this account."
_NO_TRANSCRIPTION = "No such transcription for this account."
#: A secret in an answer must not be kept by caches along the way.
_NO_STORE = {"Cache-Control": "no-store"}


def _service() -> WebhookService:
    return current_app.extensions["voxhook"].webhooks


@blp.route("/webhook_endpoints", methods=["POST"])
@blp.arguments(WebhookEndpointCreateSchema)
@blp.doc(**links(
    201, GetWebhookEndpoint=link(_ONE_ENDPOINT, "get", "Read it.", endpoint_id=_NEW_ID),
    DeleteWebhookEndpoint=link(_ONE_ENDPOINT, "delete", "Unsubscribe.", endpoint_id=_NEW_ID)))
@blp.doc(**webhook_callback(
    "{$request.body#/url}", WebhookEventEnvelopeSchema,
    "Each event the endpoint subscribed to, signed per Standard Webhooks with the account's "
    "secret (GET /api/v1/webhook_secret)."))
@blp.response(201, WebhookEndpointSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="The body is not valid JSON.")
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(409, schema=ApiErrorSchema, description="webhook_endpoint_limit: the account "
                  f"has {MAX_ENDPOINTS} endpoints already; delete one first.")
@blp.alt_response(422, schema=ApiErrorSchema, description="url is missing, not http(s), or its "
                  "host resolves to an address webhooks may not go to (loopback, private, "
                  "link-local, …) or to none; an unknown event (the allowed ones are listed).")
def create_endpoint(payload: dict[str, Any]):
    """Subscribe a URL to the account's events; answers 201 with the endpoint (``we_…``).

    Every ``transcription.completed`` and ``transcription.failed`` of the account (of any of
    its keys, on either surface) that the endpoint asked for is POSTed to ``url`` as
    ``{"type", "timestamp", "data"}``, ``data`` being the transcription as
    ``GET /api/v1/transcriptions/{id}`` answers it, signed per Standard Webhooks with the
    account's secret (``GET /api/v1/webhook_secret``) and retried with back-off until a 2xx.
    This is what an n8n trigger node or a Zapier REST hook subscribes with; DELETE the
    endpoint to unsubscribe. The host must resolve to public addresses only.
    """
    return _service().create_endpoint(caller().account_id, payload["url"], payload["events"],
                                      payload["description"])


@blp.route("/webhook_endpoints", methods=["GET"])
@blp.response(200, WebhookEndpointListSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
def list_endpoints():
    """The account's webhook endpoints, oldest first (deleted ones are not listed)."""
    return {"data": _service().endpoints(caller().account_id)}


@blp.route("/webhook_endpoints/<endpoint_id>", methods=["GET"])
@blp.response(200, WebhookEndpointSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NO_ENDPOINT + " (or it was deleted)")
def get_endpoint(endpoint_id: str):
    """One webhook endpoint of the account."""
    return _service().endpoint(caller().account_id, endpoint_id)


@blp.route("/webhook_endpoints/<endpoint_id>", methods=["DELETE"])
@blp.response(200, WebhookEndpointDeletedSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NO_ENDPOINT)
def delete_endpoint(endpoint_id: str):
    """Unsubscribe: nothing more is sent to the endpoint, from now on.

    Its deliveries still waiting for an attempt end ``failed`` ("endpoint deleted"); what
    was sent stays in each transcription's delivery history. Deleting it again answers the
    same, so an integration's unsubscribe can safely be retried.
    """
    return _service().delete_endpoint(caller().account_id, endpoint_id)


@blp.route("/transcriptions/<transcription_id>/webhook_deliveries", methods=["GET"])
@blp.response(200, WebhookDeliveryListSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NO_TRANSCRIPTION)
def list_deliveries(transcription_id: str):
    """Every webhook sent (or to be sent) about a transcription, with every attempt.

    One delivery per URL: the transcription's own ``webhook_url``, and each subscribed
    endpoint. Its ``id`` is the ``webhook-id`` header, the same on every attempt, so a
    receiver that saw it already can drop the repeat. Each attempt says when it was made,
    the receiver's status code, how long it took, what went wrong and when the next is due.
    """
    return {"data": _service().deliveries(caller().account_id, transcription_id)}


@blp.route("/transcriptions/<transcription_id>/webhook_deliveries/<delivery_id>/resend",
           methods=["POST"])
@blp.response(202, WebhookDeliverySchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description="No such transcription for this "
                  "account, or no such delivery of it.")
@blp.alt_response(409, schema=ApiErrorSchema, description="webhook_delivery_not_resendable: it "
                  "went to an endpoint that was deleted since.")
def resend_delivery(transcription_id: str, delivery_id: str):
    """Send a delivery again, now; answers 202 with it, status ``pending``.

    The same body under the same ``webhook-id`` (receivers that processed it already can
    drop it), with a fresh ``webhook-timestamp`` and signature. Delivered, failed and
    waiting deliveries may all be resent; the attempt appears in the history within
    moments.
    """
    return _service().resend(caller().account_id, transcription_id, delivery_id)


@blp.route("/webhook_secret", methods=["GET"])
@blp.response(200, WebhookSecretSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
def get_secret():
    """The account's webhook signing secret (``whsec_…``), made on first use.

    Every webhook of the account is signed with it: ``webhook-signature`` is
    ``v1,<base64 HMAC-SHA256>`` of ``{webhook-id}.{webhook-timestamp}.{body}``, the key being
    the base64-decoded part after ``whsec_``. Any Standard Webhooks library verifies it.
    """
    return _service().secret(caller().account_id), 200, _NO_STORE


@blp.route("/webhook_secret/rotate", methods=["POST"])
@blp.response(200, WebhookSecretSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
def rotate_secret():
    """Replace the signing secret; answers the new one.

    The previous secret keeps signing for a while (``previous_valid_until``, a day by
    default): meanwhile each webhook carries two signatures, one per secret, so receivers
    holding either verify, and can switch to the new one without missing a delivery.
    """
    return _service().rotate_secret(caller().account_id), 200, _NO_STORE
