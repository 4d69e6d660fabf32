"""The views of OpenAI's audio API. Synchronous, like OpenAI's: the answer comes when the
transcription ends (or streams while it runs).

Each request creates an ordinary transcription on the v1 surface: the file becomes an
upload, the job is queued like any other, listed, billed on the same wallet and key, and
its webhooks fire. The view then waits for the worker's end notification (no polling, no
thread held under gevent, see :mod:`app.transcriptions.waiting`) and renders the stored
result in the asked ``response_format``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, jsonify, stream_with_context
from marshmallow import Schema, fields

from app.api.auth import authenticate, caller
from app.api.bodies import CreateBody, SpooledPart
from app.api.openai import errors
from app.api.openai.form import (
    OpenAiRequest,
    TranscriptionFormSchema,
    TranslationFormSchema,
    model_ids,
    read_request,
)
from app.api.openai.render import TEXT_TYPES, render
from app.api.openapi import ErrorBodyBlueprint
from app.api.routes import _create_with_file, form_with_file
from app.api.waiting import is_final, notifications
from app.errors import ApiError
from app.store.models import Surface, Transcription, TranscriptionStatus
from app.transcriptions.waiting import (
    MAX_WAIT_S,
    RECHECK_S,
    SegmentStream,
    wait_until_final,
)

blp = ErrorBodyBlueprint("openai", __name__, url_prefix="/v1",
                         error_schema=errors.OpenAiErrorSchema,
                         description="OpenAI-compatible audio API: point an OpenAI SDK's base "
                         "URL at <server>/v1 and use a Voxhook key.")
blp.before_request(authenticate)
blp.register_error_handler(ApiError, errors.from_api_error)
blp.register_error_handler(Exception, errors.from_unexpected)

#: The SDK's ``Model.created`` for every model: Voxhook's models have no release date.
MODEL_CREATED = 0


class ModelSchema(Schema):
    """A model a request may name (OpenAI's ``Model``)."""

    id = fields.String(required=True)
    object = fields.String(required=True, metadata={"enum": ["model"]})
    created = fields.Integer(required=True, metadata={
        "description": "Always 0: Voxhook's models have no release date."})
    owned_by = fields.String(required=True)


class ModelListSchema(Schema):
    """Every model a request may name."""

    object = fields.String(required=True, metadata={"enum": ["list"]})
    data = fields.List(fields.Nested(ModelSchema), required=True)


def _form_doc(schema: type[Schema], summary: str) -> dict[str, Any]:
    form = form_with_file(schema, summary, schema.__name__.replace("FormSchema",
                                                                   "RequestFormSchema"))
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": form}}},
        "responses": {"200": {"description": (
            "By response_format: json {text, usage}; verbose_json {task, language, "
            "duration, text, segments, words, usage}; diarized_json {task, duration, text, "
            "segments with speaker, usage}; text, srt, vtt as text; with stream=true, "
            "text/event-stream of transcript.text.delta then transcript.text.done events."),
            "content": {"application/json": {"schema": {"type": "object"}},
                        "text/plain": {"schema": {"type": "string"}},
                        "text/event-stream": {"schema": {"type": "string"}}}},
            "400": {"description": "A field is invalid (param names it), or the file is not "
                    "usable audio (param: file)."},
            "401": {"description": "Missing, unknown or revoked key."},
            "429": {"description": "insufficient_quota: billing is on and the account has "
                    "nothing available."}}}


@blp.route("/audio/transcriptions", methods=["POST"])
@blp.doc(**_form_doc(TranscriptionFormSchema, "The audio or video file."))
def create_transcription() -> Response:
    """Transcribe a file (OpenAI's ``audio.transcriptions.create``).

    Answers when the transcription ends; the transcription is also listed in
    GET /api/v1/transcriptions, billed and announced by webhooks like any other.
    """
    return _respond(read_request(TranscriptionFormSchema, _catalog(), "transcribe"))


@blp.route("/audio/translations", methods=["POST"])
@blp.doc(**_form_doc(TranslationFormSchema, "The audio or video file, in any language."))
def create_translation() -> Response:
    """Translate speech into English text (Whisper's translate task; OpenAI's
    ``audio.translations.create``)."""
    return _respond(read_request(TranslationFormSchema, _catalog(), "translate"))


@blp.route("/models", methods=["GET"])
@blp.response(200, ModelListSchema)
def list_models() -> dict[str, Any]:
    """The models a request may name: every pipeline code and alias, and OpenAI's model
    names (which mean the default pipeline unless a pipeline claims them)."""
    return {"object": "list", "data": [_model(name) for name in model_ids(_catalog())]}


@blp.route("/models/<path:model_id>", methods=["GET"])
@blp.response(200, ModelSchema)
@blp.alt_response(404, description="model_not_found: no such model (param: model).")
def retrieve_model(model_id: str) -> dict[str, Any] | Response:
    """One model of GET /v1/models."""
    if model_id not in model_ids(_catalog()):
        return errors.openai_error(404, f"The model '{model_id}' does not exist; GET "
                                   "/v1/models lists them.", "model_not_found", "model")
    return _model(model_id)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "voxhook"}


def _catalog():
    return current_app.extensions["voxhook"].catalog


def _respond(req: OpenAiRequest) -> Response:
    created = _create_with_file(Surface.V1, CreateBody(req.payload, SpooledPart(req.file)),
                                lambda row: (200, {"id": row.id}))
    transcription_id = created.body["id"]
    if req.stream:
        return Response(stream_with_context(_events(transcription_id)),
                        mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                 "X-Voxhook-Transcription-Id": transcription_id})
    row = _wait(transcription_id)
    response = _answer(row, req)
    response.headers["X-Voxhook-Transcription-Id"] = transcription_id
    return response


def _wait(transcription_id: str) -> Transcription:
    """Wait for the job to end, however long it takes (its own deadline bounds it)."""
    service = current_app.extensions["voxhook"].transcriptions
    who = caller()
    while True:
        row = wait_until_final(notifications(), transcription_id, MAX_WAIT_S,
                               lambda: service.get(who, transcription_id), is_final)
        if is_final(row):
            return row


def _answer(row: Transcription, req: OpenAiRequest) -> Response:
    if row.status != TranscriptionStatus.COMPLETED:
        return errors.from_failed_job(row.error_code, row.error_message)
    temperature = (row.engine_options or {}).get("temperature")
    body = render(row.result or {}, req.response_format, task=req.task, words=req.words,
                  segments=req.segments, temperature=temperature)
    if isinstance(body, str):
        return Response(body, content_type=TEXT_TYPES[req.response_format])
    return jsonify(body)


def _events(transcription_id: str) -> Iterator[str]:
    """Server-sent events: a delta per segment as the worker decodes it, then the stored
    transcript (or an error event when the job failed)."""
    services = current_app.extensions["voxhook"]
    who = caller()
    stream = SegmentStream(services.queue.redis, services.settings.queue_name,
                           transcription_id)
    sent = 0
    while not stream.ended:
        segments = stream.read(block_s=RECHECK_S)
        for segment in segments:
            delta = segment.text if sent == 0 else " " + segment.text
            sent += 1
            yield _sse({"type": "transcript.text.delta", "delta": delta,
                        "segment_id": f"seg_{segment.index}"})
        if not segments and is_final(services.transcriptions.get(who, transcription_id)):
            break  # ended without closing its stream (a crash): the row says how
    row = services.transcriptions.get(who, transcription_id)
    if row.status != TranscriptionStatus.COMPLETED:
        yield _sse(errors.error_event(row.error_code, row.error_message))
        return
    yield _sse({"type": "transcript.text.done",
                "text": (row.result or {}).get("full_transcript", "")})


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
