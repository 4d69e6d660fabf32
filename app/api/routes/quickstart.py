"""The Quickstart surface: ``POST /transcribe`` and ``GET /transcribe/{id}`` (SPEC.md §2),
plus ``GET /transcribe/{id}/export``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.api.auth import authenticate, caller
from app.api.routes import (
    document_create,
    document_export_errors,
    export_doc,
    respond_with_export,
    respond_with_new_transcription,
)
from app.api.schemas.common import ApiErrorSchema
from app.api.schemas.transcription_queries import ExportQuerySchema, QuickstartCreatedSchema
from app.api.schemas.transcriptions import QuickstartCreateSchema, QuickstartFileFieldsSchema
from app.api.waiting import WaitQuerySchema, get_when_final
from app.store.models import Surface, Transcription
from app.transcriptions.representation import QuickstartTranscriptionSchema

blp = Blueprint("quickstart", __name__, url_prefix="/transcribe",
                description="Quickstart surface: one POST to start, one GET to poll.")
blp.before_request(authenticate)

_created = QuickstartCreatedSchema()
_transcription = QuickstartTranscriptionSchema()


def _render_created(transcription: Transcription) -> tuple[int, dict[str, Any]]:
    return 200, _created.dump(transcription)


@blp.route("", methods=["POST"])
@document_create(blp, 200, QuickstartCreateSchema, QuickstartFileFieldsSchema,
                 QuickstartCreatedSchema, QuickstartTranscriptionSchema,
                 "A field is invalid (each is named), an upload_id that cannot be used, or an "
                 "empty file.")
def create():
    """Start a transcription of the file at ``url`` (or of an uploaded file).

    Answers at once with the id and status ``queued``; the file is fetched and transcribed in
    the background. Instead of ``url``, ``upload_id`` names a file sent through
    POST /api/v1/uploads. Send ``Idempotency-Key`` to make retries safe.
    """
    return respond_with_new_transcription(Surface.QUICKSTART, QuickstartCreateSchema,
                                          QuickstartFileFieldsSchema, _render_created)


@blp.route("/<transcription_id>", methods=["GET"])
@blp.arguments(WaitQuerySchema, location="query")
@blp.response(200, QuickstartTranscriptionSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description="No such transcription for this account.")
def get(query: dict[str, Any], transcription_id: str):
    """Poll a transcription until ``status`` is ``completed`` or ``failed``.

    With ``?wait=N`` the answer comes as soon as it is final, or after N seconds.
    """
    return get_when_final(caller(), transcription_id, query["wait"])


@blp.route("/<transcription_id>/export", methods=["GET"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(**export_doc(QuickstartTranscriptionSchema))
@document_export_errors(blp)
def export(query: dict[str, Any], transcription_id: str):
    """Download a completed transcription as SRT, WebVTT, plain text or JSON.

    ``?format=srt|vtt|txt|json``. Captions keep to 42 characters a line, 2 lines and 7 seconds
    a cue and name speakers when diarized; JSON is the same body as ``GET /transcribe/{id}``.
    """
    return respond_with_export(transcription_id, query["format"], _transcription.dump)
