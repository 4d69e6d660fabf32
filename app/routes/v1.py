"""The v1 surface: ``/api/v1/transcriptions`` and ``/api/v1/pipelines`` (SPEC.md §3)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from app.auth import authenticate, caller
from app.models import Surface, Transcription
from app.routes import (
    create_body_doc,
    document_export_errors,
    export_doc,
    respond_with_export,
    respond_with_new_transcription,
    with_body_kinds,
)
from app.schemas import (
    ApiErrorSchema,
    ExportQuerySchema,
    PipelineListSchema,
    V1CreateSchema,
    V1FileFieldsSchema,
    V1TranscriptionSchema,
)

blp = Blueprint("v1", __name__, url_prefix="/api/v1",
                description="v1 surface: transcriptions, pipelines; Bearer keys.")
blp.before_request(authenticate)

_transcription = V1TranscriptionSchema()


def _render_created(transcription: Transcription) -> tuple[int, dict[str, Any]]:
    return 201, _transcription.dump(transcription)


@blp.route("/transcriptions", methods=["POST"])
@blp.doc(**create_body_doc(V1CreateSchema, V1FileFieldsSchema))
@blp.response(201, V1TranscriptionSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="The body is not valid JSON.")
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing, unknown or revoked key.")
@blp.alt_response(413, schema=ApiErrorSchema, description="file_too_large: the file sent with "
                  "the request is over the upload limit (max_bytes says it).")
@blp.alt_response(422, schema=ApiErrorSchema, description="A field is invalid (each is named), "
                  "an unknown pipeline_code (the codes are listed), an upload_id that cannot "
                  "be used (unknown, not uploaded yet, or used already: the message says what "
                  "to do), an empty file, or an Idempotency-Key reused with another body.")
@with_body_kinds
def create_transcription():
    """Create a transcription; answers 201 with the transcription, status ``queued``.

    The audio comes from ``url`` (``source: "external_url"``) or from an upload
    (``source: "upload"`` and the ``upload_id`` of POST /api/v1/uploads, once its file is
    sent; each upload serves one transcription). With an ``Idempotency-Key`` header, a
    repeat of the same request answers the first response again (same status, body and id)
    and creates nothing.
    """
    return respond_with_new_transcription(Surface.V1, V1CreateSchema, V1FileFieldsSchema,
                                          _render_created)


@blp.route("/transcriptions/<transcription_id>", methods=["GET"])
@blp.response(200, V1TranscriptionSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description="No such transcription for this account.")
def get_transcription(transcription_id: str):
    """Poll a transcription until ``status`` is ``completed`` or ``failed``."""
    return current_app.extensions["voxhook"].transcriptions.get(caller(), transcription_id)


@blp.route("/transcriptions/<transcription_id>/export", methods=["GET"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(**export_doc(V1TranscriptionSchema))
@document_export_errors(blp)
def export_transcription(query: dict[str, Any], transcription_id: str):
    """Download a completed transcription as SRT, WebVTT, plain text or JSON.

    Captions keep to 42 characters a line, 2 lines and 7 seconds a cue, never split a word
    and, when diarized, name the speaker (``SPEAKER 1: `` in SRT, a ``<v SPEAKER 1>`` voice
    tag in WebVTT). Plain text has one paragraph per utterance, or per speaker turn when
    diarized. JSON is the same body as ``GET /api/v1/transcriptions/{id}``.
    """
    return respond_with_export(transcription_id, query["format"], _transcription.dump)


@blp.route("/pipelines", methods=["GET"])
@blp.response(200, PipelineListSchema)
def list_pipelines():
    """The pipelines a transcription can run on: price, languages, whether it diarizes."""
    catalog = current_app.extensions["voxhook"].catalog
    return {"data": [
        {**pipeline.__dict__, "can_diarize": pipeline.can_diarize,
         "default": pipeline.code == catalog.default_code}
        for pipeline in catalog.pipelines
    ]}
