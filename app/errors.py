"""Errors the API answers: the hierarchy, with each error's status, code and body.

Every error body has one shape, on both surfaces::

    {"error": {"code": "validation_error",
               "message": "what went wrong and what to do",
               "fields": {"speaker_count": ["must be at least 1"]}}}   # when fields are at fault

``code`` is stable (clients branch on it); ``message`` is for people. The domains raise these
errors and the worker reads them, so this module imports no Flask: the handlers that turn every
failure into such a JSON answer (never an HTML page or a stack trace) are in ``app.api.errors``.

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
    ├── BodyTooLarge             413 body_too_large (max_bytes: a JSON body over the edge's limit)
    ├── UnsupportedMediaType     415 unsupported_media_type (a body the operation cannot read)
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

from typing import Any


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


class BodyTooLarge(ApiError):
    """A JSON request body over the edge's limit (``app.api.edge``): request bodies are a few
    fields, files are sent as files. Carries ``max_bytes``."""

    status = 413
    code = "body_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The JSON body is larger than {_megabytes(max_bytes)} ({max_bytes} bytes); send "
            "only the fields this operation documents (a file goes in a multipart or raw "
            "body, or to an upload URL).", fields={"body": ["Too large."]},
            max_bytes=max_bytes)


class UnsupportedMediaType(ApiError):
    """A request body of a Content-Type the operation does not read (e.g. text/plain where
    JSON is expected): refused rather than ignored, so that fields are never silently lost."""

    status = 415
    code = "unsupported_media_type"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


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
