"""Errors the API answers, and the handlers that turn every failure into JSON.

Every error body has one shape, on both surfaces::

    {"error": {"code": "validation_error",
               "message": "what went wrong and what to do",
               "fields": {"speaker_count": ["must be at least 1"]}}}   # when fields are at fault

``code`` is stable (clients branch on it); ``message`` is for people. Nothing answers an HTML
page or a stack trace. Flask is imported only by the handlers, so services that raise these
errors (and the worker, which reads upload helpers) do not load it.

Hierarchy::

    ApiError
    ├── InvalidJson              400 invalid_json
    ├── ValidationFailed         422 validation_error (fields)
    ├── Unauthorized             401 unauthorized
    ├── NotFound                 404 not_found
    ├── UploadGone               410 upload_gone (its file was deleted, or never arrived)
    ├── IdempotencyKeyReused     422 idempotency_key_reused
    ├── TranscriptionNotReady    409 transcription_not_ready (status)
    ├── TranscriptionFailed      409 transcription_failed (status)
    ├── UploadAlreadyReceived    409 upload_already_received
    ├── TranscriptionNotCancellable  409 transcription_not_cancellable (status)
    ├── SignedUrlError           403, a signed URL refused
    │   ├── UploadUrlInvalid     403 upload_url_invalid
    │   ├── UploadUrlExpired     403 upload_url_expired
    │   ├── DownloadUrlInvalid   403 download_url_invalid
    │   └── DownloadUrlExpired   403 download_url_expired
    ├── FileTooLarge             413 file_too_large (max_bytes)
    ├── PaymentRequired          402 insufficient_balance (available_usd, required_usd)
    ├── Forbidden                403 forbidden (e.g. a customer key on the admin API)
    ├── AdminApiDisabled         403 admin_api_disabled (VOXHOOK_ADMIN_TOKEN is not set)
    ├── AccountExists            409 account_exists
    ├── BalanceTooLow            409 balance_too_low (an operator's adjustment below zero)
    ├── WebhookEndpointLimit     409 webhook_endpoint_limit (max_endpoints)
    ├── DeliveryNotResendable    409 webhook_delivery_not_resendable (its endpoint is deleted)
    └── ServiceUnavailable       503 service_unavailable
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response
    from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message a person can act on."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        error.update(self.extra)
        return {"error": error}


class InvalidJson(ApiError):
    status = 400
    code = "invalid_json"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="voxhook"'})


class NotFound(ApiError):
    status = 404
    code = "not_found"


class IdempotencyKeyReused(ApiError):
    status = 422
    code = "idempotency_key_reused"


class TranscriptionNotReady(ApiError):
    """An export of a transcription still queued or processing: poll, then ask again."""

    status = 409
    code = "transcription_not_ready"


class TranscriptionFailed(ApiError):
    """An export of a failed transcription: there is nothing to export, ever.

    A code of its own, so a client polling for ``transcription_not_ready`` stops.
    """

    status = 409
    code = "transcription_failed"


class UploadGone(ApiError):
    """The upload exists but its file does not (deleted after use or when unused, or its
    URL expired before anything arrived)."""

    status = 410
    code = "upload_gone"


class UploadAlreadyReceived(ApiError):
    """A second PUT to an upload URL: an upload holds one file, and it has it already."""

    status = 409
    code = "upload_already_received"


class SignedUrlError(ApiError):
    """A signed URL that cannot be honoured; 403 like a refused presigned object-store URL
    (an expired one too: the URL's permission has ended, the resource may well exist)."""

    status = 403
    code = "signed_url_invalid"


class UploadUrlInvalid(SignedUrlError):
    code = "upload_url_invalid"


class UploadUrlExpired(SignedUrlError):
    code = "upload_url_expired"


class DownloadUrlInvalid(SignedUrlError):
    code = "download_url_invalid"


class DownloadUrlExpired(SignedUrlError):
    code = "download_url_expired"


class FileTooLarge(ApiError):
    """A file over VOXHOOK_MAX_UPLOAD_MB; nothing of it is kept. Carries ``max_bytes``."""

    status = 413
    code = "file_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The file is larger than this server's limit of {_megabytes(max_bytes)} "
            f"({max_bytes} bytes); nothing was stored. Send a smaller or shorter file "
            "(e.g. audio only, compressed), or ask the operator to raise "
            "VOXHOOK_MAX_UPLOAD_MB.", max_bytes=max_bytes)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


def error_response(error: ApiError) -> Response:
    from flask import jsonify

    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def describe_fields(messages: Any) -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into ``{"field.sub": ["message", ...]}``."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                name = "body" if key == "_schema" and not prefix else str(key)
                walk(f"{prefix}.{name}" if prefix else name, value)
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            flat.setdefault(prefix or "body", []).extend(node)
        else:
            flat.setdefault(prefix or "body", []).append(str(node))

    walk("", messages)
    return flat


def invalid_fields(messages: Any) -> ValidationFailed:
    """The 422 for marshmallow's messages: every offending field named, in the message too."""
    fields = describe_fields(messages)
    summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
    return ValidationFailed(f"The request is invalid. {summary}", fields=fields)


#: Where webargs found the arguments; it nests its messages under these keys.
_LOCATIONS = frozenset({"json", "query", "querystring", "form", "headers", "cookies", "files",
                        "json_or_form", "view_args", "path"})


def _unnest_location(messages: Any) -> Any:
    """``{"query": {"format": [...]}}`` -> ``{"format": [...]}``: clients name fields, not
    locations (each view reads arguments from one location)."""
    if isinstance(messages, dict) and len(messages) == 1:
        (location, located), = messages.items()
        if location in _LOCATIONS:
            return located
    return messages


def _from_http_exception(exc: HTTPException) -> ApiError:
    """Map Flask/webargs HTTP errors (bad JSON, failed validation, 404, 405…) onto ours."""
    if exc.code == 413:  # werkzeug's limit on a multipart body (see app.routes.bodies)
        from flask import current_app

        return FileTooLarge(current_app.extensions["voxhook"].settings.uploads.max_bytes)
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages:
        # webargs nests messages by location: {"json": {...}}, {"query": {...}}.
        located = _unnest_location(messages)
        if exc.code == 400 and located == ["Invalid JSON body."]:
            return InvalidJson(
                "The request body is not valid JSON; send a JSON object with "
                "Content-Type: application/json."
            )
        return invalid_fields(located)
    generic = ApiError(exc.description or exc.name)
    generic.status = exc.code or 500
    generic.code = (exc.name or "error").lower().replace(" ", "_")
    return generic


def register_error_handlers(app: Flask) -> None:
    """Answer every error as JSON (registered after flask-smorest's own, so ours win)."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return error_response(_from_http_exception(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error while serving a request")
        return error_response(
            ApiError("The server failed to handle this request; try again, and tell the "
                     "operator if it keeps happening.")
        )


# --------------------------------------------------------------------------- transcriptions


class TranscriptionNotCancellable(ApiError):
    """A cancel of a transcription that already ended (completed or failed): there is no
    job left to stop. Carries ``status``; a repeat cancel of a cancelled one is not this
    error (it answers the transcription again)."""

    status = 409
    code = "transcription_not_cancellable"


# --------------------------------------------------------------------------- money, admin


class PaymentRequired(ApiError):
    """The account has nothing available to pay with (VOXHOOK_BILLING=on): say how much is
    available and how to get more. ``available_usd``/``required_usd`` are exact strings."""

    status = 402
    code = "insufficient_balance"


class Forbidden(ApiError):
    """Authenticated, or recognisably trying, but not allowed here."""

    status = 403
    code = "forbidden"


class AdminApiDisabled(ApiError):
    """The admin API answers nothing until the operator sets VOXHOOK_ADMIN_TOKEN."""

    status = 403
    code = "admin_api_disabled"


class AccountExists(ApiError):
    status = 409
    code = "account_exists"


class BalanceTooLow(ApiError):
    """An operator's adjustment would take a balance below what is held there (so below
    zero); ``available_usd`` says how much may be taken."""

    status = 409
    code = "balance_too_low"


# --------------------------------------------------------------------------- webhooks


class WebhookEndpointLimit(ApiError):
    """An account already has as many webhook endpoints as it may (``max_endpoints``): each
    event is sent to every one, so their number is bounded."""

    status = 409
    code = "webhook_endpoint_limit"


class DeliveryNotResendable(ApiError):
    """A resend of a delivery whose webhook endpoint was deleted: nothing may be sent there
    any more."""

    status = 409
    code = "webhook_delivery_not_resendable"
