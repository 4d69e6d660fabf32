"""OpenAI's error shape and status codes, so SDKs raise their usual exceptions.

``{"error": {"message", "type", "param", "code"}}``: ``type`` is OpenAI's class of error
(``invalid_request_error``, ``insufficient_quota``, ``server_error``), ``param`` the field at
fault (or null), ``code`` Voxhook's stable code. Statuses follow OpenAI: a bad field is a
400 (not Voxhook's 422), an account without funds a 429 ``insufficient_quota`` (sent with
``x-should-retry: false``, which OpenAI's SDKs honour, so they do not retry it).

A failed job answers like a failed request: the file is not audio (or empty, too long, an
unusable reference clip) is a 400 on ``file``; the server's own trouble is a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from app.api.errors import _from_http_exception
from app.errors import ApiError

log = logging.getLogger(__name__)

#: Voxhook status -> (OpenAI status, OpenAI type) where they differ from the status itself.
_STATUS = {422: 400, 402: 429}
_TYPES = {401: "invalid_request_error", 429: "insufficient_quota", 500: "server_error",
          502: "server_error", 503: "server_error"}
#: Job error codes that are the caller's file (a 400 naming ``param``).
CALLER_FILE_ERRORS = {
    "not_audio": "file", "empty_file": "file", "unsupported_media": "file",
    "audio_too_long": "file", "file_too_large": "file",
    "invalid_speaker_reference": "known_speaker_references[]",
}

#: Every ``type`` an answer carries (the values of :data:`_TYPES`, and the default).
ERROR_TYPES = sorted({"invalid_request_error", *_TYPES.values()})


class OpenAiErrorDetailSchema(Schema):
    """What went wrong, as OpenAI's SDKs read it."""

    message = fields.String(required=True, metadata={
        "description": "For people: what went wrong and what to do."})
    type = fields.String(required=True, metadata={
        "enum": ERROR_TYPES, "description": "OpenAI's class of error."})
    param = fields.String(required=True, allow_none=True, metadata={
        "description": "The request field at fault, or null."})
    code = fields.String(required=True, allow_none=True, metadata={
        "description": "Voxhook's stable code (invalid_api_key for a 401)."})


class OpenAiErrorSchema(Schema):
    """Every error answer of the OpenAI-compatible surface (``/v1``): OpenAI's shape,
    ``{"error": {"message", "type", "param", "code"}}``, not Voxhook's."""

    error = fields.Nested(OpenAiErrorDetailSchema, required=True)


def openai_error(status: int, message: str, code: str | None, param: str | None = None,
                 retry: bool = True) -> Response:
    status = _STATUS.get(status, status)
    body = {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}
    response = jsonify(body)
    response.status_code = status
    if not retry or status == 429:
        response.headers["x-should-retry"] = "false"
    return response


def from_api_error(error: ApiError) -> Response:
    param = next(iter(error.fields), None) if error.fields else None
    code = "invalid_api_key" if error.status == 401 else error.code
    response = openai_error(error.status, error.message, code, param)
    response.headers.update(error.headers)
    return response


def from_http_exception(exc: HTTPException) -> Response:
    return from_api_error(_from_http_exception(exc))


def from_unexpected(_exc: Exception) -> Response:
    log.exception("unhandled error while serving an OpenAI-compatible request")
    return openai_error(500, "The server failed to handle this request; try again, and tell "
                        "the operator if it keeps happening.", "internal_error")


def from_failed_job(error_code: str | None, message: str | None) -> Response:
    """The answer for a transcription that ended without a result."""
    code = error_code or "internal_error"
    text = message or "The transcription failed."
    if code in CALLER_FILE_ERRORS:
        return openai_error(400, text, code, CALLER_FILE_ERRORS[code], retry=False)
    if code == "insufficient_balance":
        return openai_error(429, text, "insufficient_quota", retry=False)
    if code == "cancelled":
        return openai_error(409, text, code, retry=False)
    if code in ("url_refused", "fetch_failed", "upload_missing"):
        return openai_error(400, text, code, "file", retry=False)
    return openai_error(503 if code in ("model_unavailable", "worker_lost") else 500, text,
                        code)


def error_event(error_code: str | None, message: str | None) -> dict[str, Any]:
    """A failed job as a server-sent event (OpenAI's SDKs raise on an ``error`` member)."""
    return {"type": "error", "error": {"message": message or "The transcription failed.",
                                       "type": "invalid_request_error"
                                       if error_code in CALLER_FILE_ERRORS else "server_error",
                                       "param": CALLER_FILE_ERRORS.get(error_code or ""),
                                       "code": error_code}}
