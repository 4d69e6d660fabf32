"""The v1 surface: ``/api/v1/transcriptions`` (create, poll, list, cancel, delete, export) and
``/api/v1/pipelines`` (SPEC.md §3)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api.auth import authenticate, caller
from app.api.routes import (
    document_create,
    document_export_errors,
    export_doc,
    respond_with_export,
    respond_with_new_transcription,
)
from app.api.schemas.common import ApiErrorSchema
from app.api.schemas.pipelines import PipelineListSchema
from app.api.schemas.transcription_queries import (
    ExportQuerySchema,
    TranscriptionDeletedSchema,
    TranscriptionListQuerySchema,
    TranscriptionListSchema,
)
from app.api.schemas.transcriptions import V1CreateSchema, V1FileFieldsSchema
from app.api.waiting import WaitQuerySchema, get_when_final
from app.store.models import Surface, Transcription
from app.transcriptions.listing import ListQuery
from app.transcriptions.representation import V1TranscriptionSchema
from app.transcriptions.service import TranscriptionService

blp = Blueprint("v1", __name__, url_prefix="/api/v1",
                description="v1 surface: transcriptions, pipelines; Bearer keys.")
blp.before_request(authenticate)

_transcription = V1TranscriptionSchema()
_without_result = V1TranscriptionSchema(exclude=("result",))
_UNAUTHORIZED = "Missing, unknown or revoked key."
_NOT_FOUND = "No such transcription for this account."


def _service() -> TranscriptionService:
    return current_app.extensions["voxhook"].transcriptions


def _render_created(transcription: Transcription) -> tuple[int, dict[str, Any]]:
    return 201, _transcription.dump(transcription)


@blp.route("/transcriptions", methods=["POST"])
@document_create(blp, 201, V1CreateSchema, V1FileFieldsSchema, V1TranscriptionSchema,
                 V1TranscriptionSchema, "A field is invalid (each is named), an unknown "
                 "pipeline_code (the codes are listed), an upload_id that cannot be used "
                 "(unknown, not uploaded yet, or used already: the message says what to do), "
                 "an empty file, or an Idempotency-Key reused with another body.")
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


@blp.route("/transcriptions", methods=["GET"])
@blp.arguments(TranscriptionListQuerySchema, location="query", unknown=RAISE)
@blp.response(200, TranscriptionListSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(422, schema=ApiErrorSchema, description="A parameter is invalid (each is "
                  "named), or starting_after is not one of this account's transcriptions.")
def list_transcriptions(query: dict[str, Any]) -> Response:
    """List this account's transcriptions, newest first, a page at a time.

    Pages follow each other with ``starting_after``: pass the ``next_starting_after`` of a
    page to get the next (older) one, until ``has_more`` is false. The order is created_at,
    then id, both descending, and a page starts strictly after its cursor, so transcriptions
    created while you page (they are newer) never shift or repeat what follows: every one
    is seen exactly once. To poll for new ones (Zapier, Make, n8n triggers), read the first
    page and keep the ids not seen before. Filters: ``status`` (one or several),
    ``created_after`` (inclusive) and ``created_before`` (exclusive), ISO 8601, UTC when
    no offset is given.
    """
    page = _service().page(caller(), ListQuery(
        limit=query["limit"], starting_after=query["starting_after"],
        statuses=tuple(query["status"]), created_after=query["created_after"],
        created_before=query["created_before"], include_result=query["include_result"]))
    dump = _transcription if query["include_result"] else _without_result
    return jsonify({"object": "list", "data": dump.dump(page.items, many=True),
                    "has_more": page.has_more,
                    "next_starting_after": page.next_starting_after})


@blp.route("/transcriptions/<transcription_id>", methods=["GET"])
@blp.arguments(WaitQuerySchema, location="query")
@blp.response(200, V1TranscriptionSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NOT_FOUND)
def get_transcription(query: dict[str, Any], transcription_id: str):
    """Poll a transcription until ``status`` is ``completed`` (or ``failed``, ``cancelled``).

    With ``?wait=N`` the answer comes as soon as it is final, or after N seconds.
    """
    return get_when_final(caller(), transcription_id, query["wait"])


@blp.route("/transcriptions/<transcription_id>/cancel", methods=["POST"])
@blp.response(200, V1TranscriptionSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NOT_FOUND)
@blp.alt_response(409, schema=ApiErrorSchema, description="transcription_not_cancellable: "
                  "it is already completed or failed (status says which).")
def cancel_transcription(transcription_id: str):
    """Stop a queued or processing transcription; it ends ``cancelled`` and costs nothing.

    Answers the transcription, status ``cancelled`` (error code ``cancelled``). A queued job
    is taken off the queue at once; a running one stops within a few seconds, and whatever
    was held from the wallet for it is released. Its media is deleted like any finished
    job's. Cancelling a cancelled transcription answers it again; a completed or failed one
    is a 409. On the Quickstart surface a cancelled transcription reads as ``failed``.
    """
    return _service().cancel(caller(), transcription_id)


@blp.route("/transcriptions/<transcription_id>", methods=["DELETE"])
@blp.response(200, TranscriptionDeletedSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description=_UNAUTHORIZED)
@blp.alt_response(404, schema=ApiErrorSchema, description=_NOT_FOUND)
def delete_transcription(transcription_id: str):
    """Delete a transcription: its transcript, its media and the record itself.

    A queued or running job is cancelled first. Afterwards the id answers 404 on both
    surfaces and leaves listings, and the ``Idempotency-Key`` that created it is free again
    (a repeat of that request creates a new transcription). Its spend leaves
    ``GET /api/v1/usage`` too; what the wallet was charged stays in its ledger.
    """
    _service().delete(caller(), transcription_id)
    return {"id": transcription_id}


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
    """The pipelines a transcription can run on: price, languages, whether it diarizes, its
    engine (local faster-whisper or a remote OpenAI-compatible one) and its capabilities
    (word timings, speakers, languages, AI analyses)."""
    catalog = current_app.extensions["voxhook"].catalog
    return {"data": [pipeline.listing(catalog.default_code) for pipeline in catalog.pipelines]}
