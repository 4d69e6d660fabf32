"""HTTP resources: one module per surface, plus health checks; what both surfaces share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema

from app.auth import caller
from app.errors import TranscriptionFailed, TranscriptionNotReady
from app.exports import FORMATS, render
from app.models import Surface, Transcription, TranscriptionStatus
from app.schemas import ApiErrorSchema
from app.transcriptions import Idempotency, Renderer


def respond_with_new_transcription(surface: Surface, payload: dict[str, Any],
                                   render: Renderer) -> Response:
    """The body of both surfaces' create views: idempotency, the service, the stored answer.

    The answer is already rendered (and may be a replay of the stored first answer), so it is
    sent as is rather than dumped again by flask-smorest.
    """
    idempotency = Idempotency.from_request(
        request.headers.get("Idempotency-Key"), request.method, request.path, payload)
    service = current_app.extensions["voxhook"].transcriptions
    status, body = service.create(caller(), surface, payload, render, idempotency)
    response = jsonify(body)
    response.status_code = status
    return response


# --------------------------------------------------------------------------- exports


#: The error answers of both export views: (status, what it means).
EXPORT_ERRORS = (
    (401, "Missing, unknown or revoked key."),
    (404, "No such transcription for this account."),
    (409, "Not completed: transcription_not_ready while queued or processing (poll, then ask "
          "again), transcription_failed when it failed."),
    (422, "format is missing or unknown; the allowed values are listed."),
)


def document_export_errors(blueprint: Blueprint) -> Callable[[Callable[..., Any]], Any]:
    """Decorate an export view with the OpenAPI description of its error answers."""
    def decorate(view: Callable[..., Any]) -> Any:
        for status, description in EXPORT_ERRORS:
            view = blueprint.alt_response(status, schema=ApiErrorSchema,
                                          description=description)(view)
        return view
    return decorate


def export_doc(json_schema: type[Schema]) -> dict[str, Any]:
    """OpenAPI of an export's 200 answer: one content type per format (``json_schema`` is
    the surface's GET body, which the JSON export repeats)."""
    text = {"schema": {"type": "string"}}
    return {"responses": {"200": {
        "description": "The export as a file to save (Content-Disposition: attachment; "
                       'filename="<id>.<ext>"). Captions keep to 42 characters a line, 2 '
                       "lines and 7 seconds a cue, and name speakers when diarized.",
        "headers": {"Content-Disposition": {
            "description": 'attachment; filename="<id>.<srt|vtt|txt|json>"',
            "schema": {"type": "string"}}},
        "content": {
            "application/x-subrip": text,
            "text/vtt": text,
            "text/plain": text,
            "application/json": {"schema": json_schema},
        },
    }}}


def respond_with_export(transcription_id: str, format_name: str,
                        dump: Callable[[Transcription], dict[str, Any]]) -> Response:
    """The body of both surfaces' export views: the caller's completed transcription as a
    file in ``format_name``; ``dump`` renders the surface's GET body for the JSON export.

    404 like GET for an unknown or another account's id; 409 until it is completed.
    """
    transcription = current_app.extensions["voxhook"].transcriptions.get(
        caller(), transcription_id)
    _check_exportable(transcription, poll_path=request.path.removesuffix("/export"))
    export = FORMATS[format_name]
    body = dump(transcription) if format_name == "json" else {}
    response = Response(render(format_name, transcription.result or {}, body),
                        content_type=export.media_type)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{transcription.id}.{export.extension}"')
    return response


def _check_exportable(transcription: Transcription, poll_path: str) -> None:
    """Only a completed transcription has a result to export."""
    status = transcription.status
    if status == TranscriptionStatus.FAILED:
        raise TranscriptionFailed(
            f"Transcription '{transcription.id}' failed ({transcription.error_code}), so there "
            f"is nothing to export; GET {poll_path} says why. Create a new transcription.",
            status=str(status))
    if status != TranscriptionStatus.COMPLETED:
        raise TranscriptionNotReady(
            f"Transcription '{transcription.id}' is {status}; it can be exported once it is "
            f"completed. Poll GET {poll_path} until status is 'completed', then ask again.",
            status=str(status))
