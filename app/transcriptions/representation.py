"""What a transcription looks like to its clients: the body of each surface's GET, with the
result's words and utterances.

The API answers with these, and the webhook outbox (``app.webhooks.events``) stores the very
same bodies for delivery, so a script that polls and one that waits for the webhook read the
same thing. Marshmallow only, no Flask: the worker imports them through the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    Schema,
    fields,
)

from app.billing.pricing import micro_usd_to_cents, micro_usd_to_usd


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC; naive values (SQLite returns those) are taken as UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


#: Every status of a transcription on the v1 surface, in the order a job goes through them.
TRANSCRIPTION_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")


class WordSchema(Schema):
    word = fields.String(required=True, metadata={"description": "The word as spoken, "
                                                   "with its punctuation."})
    start = fields.Float(required=True, metadata={"description": "Seconds from file start."})
    end = fields.Float(required=True, metadata={"description": "Seconds; end >= start."})
    confidence = fields.Float(required=True, metadata={
        "description": "The engine's probability for the word, in [0, 1]."})
    speaker = fields.String(allow_none=True, metadata={
        "description": "'SPEAKER n' when diarized, else null."})


class UtteranceSchema(Schema):
    """One speaker's run of speech. Diarized, it breaks where the speaker changes, at pauses
    of a second or more, and before it passes about 200 characters (at a sentence end; 400
    or 30 s at most); otherwise it is one segment of the engine."""

    start = fields.Float(required=True)
    end = fields.Float(required=True)
    text = fields.String(required=True)
    speaker = fields.String(allow_none=True, metadata={
        "description": "'SPEAKER n' when diarized, else null."})
    confidence = fields.Float(required=True, metadata={
        "description": "The arithmetic mean of its words' confidences; without words, the "
        "engine's average token probability for the segment (exp of the mean token "
        "log-probability). In [0, 1]."})
    words = fields.List(fields.Nested(WordSchema), metadata={
        "description": "Present when alignment is on; every word lies inside the utterance."})


class AnalysisOutcomeSchema(Schema):
    """One AI analysis of the transcript."""

    status = fields.String(required=True, metadata={
        "enum": ["completed", "failed"], "description": "failed: see error; not charged."})
    result = fields.Dict(allow_none=True, metadata={
        "description": "The model's answer, valid against the analysis's JSON schema."})
    error = fields.String(allow_none=True, metadata={
        "description": "Why it failed (the endpoint failed or timed out, or its answer "
        "twice did not follow the schema)."})


class ResultSchema(Schema):
    full_transcript = fields.String(required=True, metadata={
        "description": "The utterances' texts joined by single spaces."})
    language = fields.String(required=True, metadata={"description": "ISO 639-1 code, given "
                                                       "or detected."})
    duration_seconds = fields.Float(required=True)
    speakers = fields.List(fields.String(), required=True, metadata={
        "description": "Speaker labels ('SPEAKER 1', 'SPEAKER 2', …) in order of first "
        "appearance in the transcript, then any speaker the diarizer heard who said no "
        "transcribed word (in order of first turn); empty without diarize. Each word goes to "
        "the speaker whose turns overlap it most (a word between turns: the nearest turn)."})
    utterances = fields.List(fields.Nested(UtteranceSchema), required=True)
    analysis = fields.Dict(keys=fields.String(), values=fields.Nested(AnalysisOutcomeSchema),
                           metadata={"description": "Present when analyses were asked for: "
                                     "each asked analysis by name."})


class StoredResult(fields.Nested):
    """The result, written as it is stored: the worker stores :func:`stored_result`, which
    is already this schema's output, so answering it needs no second pass. Documented as the
    nested :class:`ResultSchema` all the same.

    Why: serializing the words one field at a time was most of a GET's time (a one-minute
    file holds ~150 words, an hour ~9,000, each five fields), and polls, listings and the
    webhook outbox all answer it (``benchmarks/bench_api_beside_worker.py``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ResultSchema, **kwargs)

    def _serialize(self, nested_obj: Any, attr: str | None, obj: Any, **kwargs: Any):
        return nested_obj


def stored_result(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as the worker stores it: exactly what :class:`ResultSchema` writes, so
    that :class:`StoredResult` can answer the stored document as it is."""
    return ResultSchema().dump(result)


class CentsField(fields.Field):
    """Micro-dollars shown as a number of cents with 4 decimals (6667 -> 0.6667).

    The amount stays an integer internally; only the JSON number is written in cents.
    """

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any):
        return None if value is None else float(micro_usd_to_cents(value))


class UsdStringField(fields.Field):
    """Micro-dollars shown as an exact decimal string of dollars (6667 -> "0.006667")."""

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any):
        return None if value is None else str(micro_usd_to_usd(value))


class QuickstartTranscriptionSchema(Schema):
    """``GET /transcribe/{id}``: poll until status is 'completed' or 'failed'."""

    id = fields.String(required=True)
    status = fields.Method("_status", required=True, metadata={
        "type": "string", "enum": ["queued", "processing", "completed", "failed"],
        "description": "queued, processing, completed or failed. A transcription cancelled "
        "through the v1 surface is failed here, with error_code 'cancelled'."})
    progress = fields.Float(metadata={"description": "0..1 while processing; 1 when done."})
    audio_duration_seconds = fields.Float(allow_none=True)
    cost_cents = CentsField(attribute="cost_micro_usd", allow_none=True, metadata={
        "type": "number", "description": "0.20 USD per hour, billed per second; 4 decimals. "
        "Null until the audio's duration is known."})
    error = fields.String(attribute="error_message", allow_none=True, metadata={
        "description": "On failed: what went wrong and what to do."})
    error_code = fields.String(allow_none=True)
    result = StoredResult(allow_none=True)
    created_at = UtcDateTime()
    completed_at = UtcDateTime(allow_none=True)

    def _status(self, transcription: Any) -> str:
        """This contract's statuses end in completed or failed: a cancelled job failed."""
        return "failed" if transcription.status == "cancelled" else transcription.status


class V1ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class V1TranscriptionSchema(Schema):
    """``GET /api/v1/transcriptions/{id}``."""

    id = fields.String(required=True, metadata={"description": "tr_… (also found through "
                                                 "/transcribe/{id})."})
    object = fields.Constant("transcription")
    status = fields.String(required=True, metadata={
        "enum": list(TRANSCRIPTION_STATUSES),
        "description": "queued, processing, then completed, failed or cancelled (stopped by "
        "POST /api/v1/transcriptions/{id}/cancel; error.code is 'cancelled', nothing is "
        "charged)."})
    source = fields.String(metadata={"description": "external_url or upload."})
    url = fields.String(allow_none=True)
    upload_id = fields.String(allow_none=True, metadata={"description": "With source "
                                                         "upload: the upload transcribed."})
    pipeline_code = fields.String()
    language = fields.String(allow_none=True, metadata={"description": "As requested; null "
                                                         "means detect."})
    align = fields.Boolean()
    diarize = fields.Boolean()
    speaker_count = fields.Integer(allow_none=True)
    min_speakers = fields.Integer(allow_none=True)
    max_speakers = fields.Integer(allow_none=True)
    webhook_url = fields.String(allow_none=True)
    progress = fields.Float()
    audio_duration_seconds = fields.Float(allow_none=True)
    cost_usd = UsdStringField(attribute="cost_micro_usd", allow_none=True, metadata={
        "type": "string", "description": "Exact decimal dollars, the pipeline's price a "
        "minute prorated per second. Null until the audio's duration is known."})
    error = fields.Method("_error", allow_none=True, metadata={
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "description": "On failed (and cancelled): code and message; null otherwise."})
    result = StoredResult(allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    completed_at = UtcDateTime(allow_none=True)

    def _error(self, obj: Any) -> dict[str, str] | None:
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}
