"""HTTP resources: one module per surface, plus health checks; what both surfaces share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.auth import caller
from app.api.bodies import CreateBody, read_create_body
from app.api.openapi import link, links, webhook_callback
from app.api.schemas.common import ApiErrorSchema
from app.errors import TranscriptionFailed, TranscriptionNotReady
from app.store.models import Surface, Transcription, TranscriptionStatus
from app.transcriptions.exports import FORMATS, render
from app.transcriptions.idempotency import Idempotency
from app.transcriptions.service import Created, Renderer


def respond_with_new_transcription(surface: Surface, schema: type[Schema],
                                   file_schema: type[Schema], render: Renderer) -> Response:
    """The body of both surfaces' create views: the request's fields (and file), idempotency,
    the service, the stored answer.

    The answer is already rendered (and may be a replay of the stored first answer), so it is
    sent as is rather than dumped again by flask-smorest.
    """
    body = read_create_body(schema, file_schema)
    if body.file is None:
        idempotency = Idempotency.from_request(
            request.headers.get("Idempotency-Key"), request.method, request.path, body.fields)
        service = current_app.extensions["voxhook"].transcriptions
        created = service.create(caller(), surface, body.fields, render, idempotency)
    else:
        created = _create_with_file(surface, body, render)
    response = jsonify(created.body)
    response.status_code = created.status
    return response


def _create_with_file(surface: Surface, body: CreateBody, render: Renderer) -> Created:
    """A one-request upload: check everything that can be checked before the file is
    stored, store it, then create the transcription exactly as for a two-step upload.

    The idempotency fingerprint covers the fields and the file's size and SHA-256 (a retry
    stores its file anew, with a new upload id). A file nobody ends up using (the creation
    was refused, or it was a replay) is deleted at once.
    """
    services = current_app.extensions["voxhook"]
    assert body.file is not None
    services.transcriptions.check(body.fields)
    key = Idempotency.check_key(request.headers.get("Idempotency-Key"))
    if key is None:  # with a key, a replay answers first (create checks funds after it)
        services.transcriptions.check_funds(caller())
    upload = body.file.store(services.uploads, caller())
    identity = {**body.fields, "file": {"size_bytes": upload.size_bytes,
                                        "sha256": upload.sha256}}
    try:
        created = services.transcriptions.create(
            caller(), surface, {**body.fields, "upload_id": upload.id}, render,
            Idempotency.from_request(key, request.method, request.path, identity))
    except BaseException:
        services.uploads.discard(upload.id)
        raise
    if created.replayed:
        services.uploads.discard(upload.id)
    return created


@cache
def form_with_file(fields_schema: type[Schema], description: str, name: str) -> type[Schema]:
    """``fields_schema`` plus a required ``file`` part: a multipart form as one schema
    (named ``name``), not an allOf, since the fields' schema is closed to other
    properties (an allOf of it and the part could hold no form at all)."""
    part = fields.Raw(required=True, metadata={
        "type": "string", "format": "binary", "description": description})
    return type(name, (fields_schema,), {"file": part, "__doc__": fields_schema.__doc__})


def _with_file_part(file_schema: type[Schema]) -> type[Schema]:
    """The multipart form of a one-request upload."""
    return form_with_file(file_schema, (
        "The audio or video file (a one-request upload). The other fields are form "
        "fields: true/false for booleans, digits for numbers; empty ones are ignored. "
        "Without a file part, the form fields are read like the JSON body."),
        file_schema.__name__.replace("FieldsSchema", "FormSchema"))


def create_body_doc(schema: type[Schema], file_schema: type[Schema]) -> dict[str, Any]:
    """OpenAPI of a create view's three kinds of request body (flask-smorest describes one
    JSON body; a file with form fields, or a raw body with query fields, is written here)."""
    binary = {"type": "string", "format": "binary"}
    raw = {"schema": binary}
    return {
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": schema},
            "multipart/form-data": {"schema": _with_file_part(file_schema)},
            "application/x-www-form-urlencoded": {"schema": schema},
            "audio/*": raw, "video/*": raw, "application/octet-stream": raw,
        }},
        "parameters": [{"in": "query", "schema": file_schema}],
    }


def created_transcription_links(status: int) -> dict[str, Any]:
    """OpenAPI links from a create view's answer (its ``id``) to what can be done with the
    transcription, on either surface."""
    one = "/api/v1/transcriptions/{transcription_id}"
    by_id = {"transcription_id": "$response.body#/id"}
    return links(
        status,
        GetTranscription=link(one, "get", "Poll it (v1).", **by_id),
        GetQuickstartTranscription=link("/transcribe/{transcription_id}", "get",
                                        "Poll it (Quickstart).", **by_id),
        CancelTranscription=link(one + "/cancel", "post", "Stop it.", **by_id),
        DeleteTranscription=link(one, "delete", "Delete it with its media.", **by_id),
        ExportTranscription=link(one + "/export", "get", "Download it once completed.",
                                 **by_id),
        ListWebhookDeliveries=link(one + "/webhook_deliveries", "get",
                                   "What was sent about it.", **by_id),
    )


#: What the create views' docstrings say about the kinds of body (the OpenAPI description).
BODY_KINDS = """Send JSON (the usual way), or upload the file in this very request (tools that
hold a file in memory, such as n8n or Zapier): as ``multipart/form-data`` (a ``file`` part
plus the fields as form fields: true/false, digits; empty ones are ignored), or as the raw
body with the file's Content-Type (``audio/*``, ``video/*``, ``application/octet-stream``)
and the fields as query parameters (those listed; with JSON or multipart they are refused:
the fields go in the body);
``Content-Disposition: attachment; filename="…"`` names a raw file. With a file, ``url`` and
``upload_id`` are refused; a file over the upload limit is a 413 ``file_too_large``, an empty
one a 422 naming ``file``."""


def with_body_kinds(view: Callable[..., Any]) -> Callable[..., Any]:
    """Append :data:`BODY_KINDS` to a create view's docstring (its OpenAPI description);
    applied right above ``def``, before flask-smorest reads the docstring."""
    view.__doc__ = inspect.cleandoc(view.__doc__ or "") + "\n\n" + BODY_KINDS
    return view


#: The error answers both surfaces' create views share: (status, what it means). Each view
#: adds its own 422, whose causes differ.
CREATE_ERRORS = (
    (400, "The body is not valid JSON."),
    (401, "Missing, unknown or revoked key."),
    (402, "insufficient_balance: billing is on and the account has nothing available; top "
          "up, then send again."),
    (413, "file_too_large: the file sent with the request is over the upload limit (max_bytes "
          "says it)."),
)


def document_create(blueprint: Blueprint, status: int, schema: type[Schema],
                    file_schema: type[Schema], answer: type[Schema], webhook_body: type[Schema],
                    unprocessable: str) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a surface's create view with its whole OpenAPI description: the three kinds
    of request body, the links from its answer, the signed webhook it may send (carrying
    ``webhook_body``), the answer (``status``, ``answer``) and every error (``unprocessable``:
    what its 422 means). One
    place, so that the two surfaces' create operations cannot drift apart. Applied like the
    stack of decorators it replaces, the innermost first."""
    def decorate(view: Callable[..., Any]) -> Any:
        view = with_body_kinds(view)
        view = blueprint.alt_response(422, schema=ApiErrorSchema,
                                      description=unprocessable)(view)
        for error_status, description in reversed(CREATE_ERRORS):
            view = blueprint.alt_response(error_status, schema=ApiErrorSchema,
                                          description=description)(view)
        view = blueprint.response(status, answer)(view)
        view = blueprint.doc(**webhook_callback(
            "{$request.body#/webhook_url}", webhook_body,
            "With webhook_url: once the transcription is completed or failed, its GET body, "
            "signed per Standard Webhooks (see GET /api/v1/webhook_secret)."))(view)
        view = blueprint.doc(**created_transcription_links(status))(view)
        return blueprint.doc(**create_body_doc(schema, file_schema))(view)
    return decorate


# --------------------------------------------------------------------------- exports


#: The error answers of both export views: (status, what it means).
EXPORT_ERRORS = (
    (401, "Missing, unknown or revoked key."),
    (404, "No such transcription for this account."),
    (409, "Not completed: transcription_not_ready while queued or processing (poll, then ask "
          "again), transcription_failed when it failed or was cancelled."),
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
    if status == TranscriptionStatus.CANCELLED:
        raise TranscriptionFailed(
            f"Transcription '{transcription.id}' was cancelled, so there is nothing to export. "
            "Create a new transcription.", status=str(status))
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
