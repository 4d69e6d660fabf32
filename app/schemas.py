"""Every request and response body of the API, defined once (they also make /openapi.json).

Requests are strict: unknown fields, wrong JSON types and contradictions are refused with the
field named. Responses are documented here even where the view hands over a stored dict, so
the OpenAPI document is the contract clients read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.exports import FORMATS
from app.languages import is_iso_639_1
from app.pricing import micro_usd_to_cents, micro_usd_to_usd

# --------------------------------------------------------------------------- custom fields


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"yes"`` or ``1`` are type errors, not booleans."""

    default_error_messages = {"invalid": "Not a boolean: send true or false."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC; naive values (SQLite returns those) are taken as UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def validate_http_url(value: str) -> None:
    """An absolute http(s) URL with a host; anything else is refused before it is queued."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Must be an absolute http:// or https:// URL.")
    if len(value) > 4096:
        raise ValidationError("Must be at most 4096 characters.")


def validate_language(value: str) -> None:
    if value != "auto" and not is_iso_639_1(value):
        raise ValidationError(
            f"'{value}' is not an ISO 639-1 language code: use two lower-case letters such "
            "as 'en' or 'de', or leave it out to detect the language."
        )


_UPLOAD_ID = re.compile(r"^up_[A-Za-z0-9]{1,40}$")


def validate_upload_id(value: str) -> None:
    if not _UPLOAD_ID.match(value):
        raise ValidationError("Not an upload id: use the id that POST /api/v1/uploads "
                              "answered (it starts with 'up_').")


def _upload_id_field(description: str) -> fields.String:
    return fields.String(validate=validate_upload_id, load_default=None,
                         metadata={"description": description})


#: The most speakers a request may ask for (a bound on the diarizer's clustering work).
MAX_SPEAKERS = 50


def _speaker_number(description: str) -> fields.Integer:
    return fields.Integer(
        strict=True, allow_none=True, load_default=None,
        validate=validate.Range(min=1, max=MAX_SPEAKERS,
                                error=f"Must be between 1 and {MAX_SPEAKERS}."),
        metadata={"description": description})


class _RequestSchema(Schema):
    """Common request fields and rules of both surfaces."""

    #: The speaker-number fields of this surface, checked against each other.
    _speaker_fields: tuple[str, ...] = ("speaker_count",)

    diarize = StrictBoolean(
        load_default=False, metadata={"description": "Label speakers (SPEAKER 1, SPEAKER 2, "
                                      "… in order of first appearance). Turns word-level "
                                      "timestamps on whatever align says. Needs a pipeline "
                                      "that can diarize (see GET /api/v1/pipelines)."})
    speaker_count = _speaker_number(
        "The exact number of speakers, when known; only with diarize. It noticeably improves "
        "the labels.")
    align = StrictBoolean(
        load_default=True, metadata={"description": "Word-level timestamps. Always on when "
                                     "diarize is true."})
    language = fields.String(
        validate=validate_language, allow_none=True, load_default=None,
        metadata={"description": "ISO 639-1 code of the spoken language; absent (or 'auto' on "
                  "v1) detects it. Passing it is faster and avoids misdetection."})
    webhook_url = fields.String(
        validate=validate_http_url, allow_none=True, load_default=None,
        metadata={"description": "Where to POST the finished transcription."})

    @validates_schema
    def _speaker_numbers_agree(self, data: dict[str, Any], **_: Any) -> None:
        """Speaker numbers need diarize and must not contradict each other."""
        given = {name: data[name] for name in self._speaker_fields
                 if data.get(name) is not None}
        if given and not data.get("diarize"):
            raise ValidationError({
                name: [f"{name} is only meaningful with diarize: true; set diarize or drop "
                       f"{name}."] for name in given})
        count, low, high = (given.get("speaker_count"), given.get("min_speakers"),
                            given.get("max_speakers"))
        if low is not None and high is not None and low > high:
            message = (f"min_speakers ({low}) is more than max_speakers ({high}): swap them "
                       "or drop one.")
            raise ValidationError({"min_speakers": [message], "max_speakers": [message]})
        if count is not None:
            errors = {}
            if low is not None and count < low:
                errors["min_speakers"] = [f"speaker_count ({count}) is below min_speakers "
                                          f"({low}): give the exact count or the bounds, "
                                          "not both."]
            if high is not None and count > high:
                errors["max_speakers"] = [f"speaker_count ({count}) is above max_speakers "
                                          f"({high}): give the exact count or the bounds, "
                                          "not both."]
            if errors:
                raise ValidationError({"speaker_count": [
                    f"speaker_count ({count}) is outside min_speakers..max_speakers."],
                    **errors})


# --------------------------------------------------------------------------- requests


class QuickstartCreateSchema(_RequestSchema):
    """Body of ``POST /transcribe``: the ``url`` of the audio, or the ``upload_id`` of a file
    uploaded beforehand."""

    url = fields.String(
        validate=validate_http_url, load_default=None,
        metadata={"description": "Audio or video to fetch (direct link, or a Google Drive, "
                  "Dropbox or OneDrive sharing link). Required unless upload_id is given."})
    upload_id = _upload_id_field(
        "Instead of url: a file uploaded through POST /api/v1/uploads and its upload URL.")

    @validates_schema
    def _url_or_upload(self, data: dict[str, Any], **_: Any) -> None:
        if "url" not in self.fields:  # a one-request upload: the file is the audio
            return
        url, upload_id = data.get("url"), data.get("upload_id")
        if url and upload_id:
            message = "Give either url or upload_id, not both."
            raise ValidationError({"url": [message], "upload_id": [message]})
        if not url and not upload_id:
            raise ValidationError(
                "Missing: give the URL of the audio or video to transcribe (or the "
                "upload_id of a file sent through POST /api/v1/uploads).", field_name="url")


#: Where a v1 transcription's audio comes from.
SOURCES = ("external_url", "upload")


class V1CreateSchema(_RequestSchema):
    """Body of ``POST /api/v1/transcriptions``."""

    _speaker_fields = ("speaker_count", "min_speakers", "max_speakers")

    source = fields.String(
        required=True,
        validate=validate.OneOf(SOURCES, error="Must be 'external_url' or 'upload'."),
        error_messages={"required": "Missing: set source to 'external_url' (and give a url) "
                        "or 'upload' (and give an upload_id)."},
        metadata={"description": "Where the audio comes from: 'external_url' (fetched from "
                  "url) or 'upload' (the file of upload_id)."})
    url = fields.String(
        validate=validate_http_url, load_default=None,
        metadata={"description": "With source 'external_url': the audio or video to fetch."})
    upload_id = _upload_id_field(
        "With source 'upload': the upload (POST /api/v1/uploads) whose file was sent to its "
        "upload_url. Each upload serves one transcription.")
    pipeline_code = fields.String(
        load_default=None,
        metadata={"description": "Which pipeline to run (GET /api/v1/pipelines lists them); "
                  "absent: the server's default."})
    min_speakers = _speaker_number(
        "At least this many speakers; only with diarize. speaker_count, when given, must "
        "lie within min_speakers..max_speakers (and then wins).")
    max_speakers = _speaker_number("At most this many speakers; only with diarize.")

    @validates_schema
    def _source_has_its_field(self, data: dict[str, Any], **_: Any) -> None:
        """Each source needs its own field and refuses the other's."""
        source = data.get("source")
        if source == "external_url":
            if data.get("upload_id"):
                raise ValidationError(
                    "upload_id is only used with source 'upload': drop it, or set source to "
                    "'upload' and drop url.", field_name="upload_id")
            if not data.get("url"):
                raise ValidationError(
                    "Missing: source 'external_url' needs the url of the audio.",
                    field_name="url")
        elif source == "upload":
            if data.get("url"):
                raise ValidationError(
                    "url is only used with source 'external_url': drop it (the audio is the "
                    "upload's file), or set source to 'external_url'.", field_name="url")
            if not data.get("upload_id") and "upload_id" in self.fields:
                raise ValidationError(
                    "Missing: source 'upload' needs the upload_id that POST /api/v1/uploads "
                    "answered.", field_name="upload_id")


class QuickstartFileFieldsSchema(QuickstartCreateSchema):
    """The fields that go with a file sent in the request itself on ``POST /transcribe``
    (multipart form fields, or query parameters of a raw body): the file takes the place of
    url and upload_id."""

    class Meta:
        exclude = ("url", "upload_id")


class V1FileFieldsSchema(V1CreateSchema):
    """The fields that go with a file sent in the request itself on
    ``POST /api/v1/transcriptions``: source is 'upload' (the default here), and the file
    takes the place of url and upload_id."""

    class Meta:
        exclude = ("url", "upload_id")

    source = fields.String(
        load_default="upload",
        validate=validate.OneOf(["upload"], error="With a file, source is 'upload' (or "
                                "leave it out); to fetch a URL instead, send JSON without "
                                "a file."),
        metadata={"description": "'upload' (the default with a file)."})


#: The fields a file replaces: sent together with a file they are refused, by name.
FILE_REPLACES = ("url", "upload_id")


def fields_from_strings(schema: Schema, values: Mapping[str, Sequence[str]]
                        ) -> dict[str, Any]:
    """Form fields or query parameters (strings, possibly repeated) as the JSON body the
    schema expects, so they meet the same strict rules and messages as JSON.

    A field the schema declares boolean takes ``true`` / ``false`` (any case), an integer
    field takes digits; any other string is left as it is, for the schema to refuse with the
    field named (``diarize=maybe``: "Not a boolean"). Empty values count as absent, since
    form builders send empty fields. A field given twice is refused.
    """
    payload: dict[str, Any] = {}
    repeated: dict[str, list[str]] = {}
    for name, items in values.items():
        given = [item for item in items if item != ""]
        if len(given) > 1:
            repeated[name] = ["Given more than once: send it once."]
            continue
        if not given:
            continue
        value, field = given[0], schema.fields.get(name)
        if isinstance(field, fields.Boolean) and value.strip().lower() in ("true", "false"):
            payload[name] = value.strip().lower() == "true"
        elif isinstance(field, fields.Integer) and re.fullmatch(r"[+-]?\d{1,9}", value.strip()):
            payload[name] = int(value)
        else:
            payload[name] = value
    if repeated:
        raise ValidationError(repeated)
    return payload


class UploadCreateSchema(Schema):
    """Body of ``POST /api/v1/uploads`` (optional: both fields are metadata)."""

    filename = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=255),
        metadata={"description": "The file's name, for your records (e.g. call.mp3)."})
    content_type = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=255),
        metadata={"description": "The file's media type (e.g. audio/mpeg); the PUT's "
                  "Content-Type, when it sends one, takes its place."})


class SignedUrlQuerySchema(Schema):
    """Query of a signed URL; the service writes both, clients copy the URL as it is."""

    class Meta:
        unknown = EXCLUDE  # a signed URL is honoured whatever else is appended to it

    expires = fields.String(load_default="", metadata={
        "description": "Unix time after which the URL is refused."})
    signature = fields.String(load_default="", metadata={
        "description": "HMAC-SHA256 of the purpose, the id and expires."})


class ExportQuerySchema(Schema):
    """Query of both surfaces' ``GET …/{id}/export``."""

    format = fields.String(
        required=True,
        validate=validate.OneOf(list(FORMATS), error="Must be one of: {choices}."),
        error_messages={"required": f"Missing: choose one of: {', '.join(FORMATS)}."},
        metadata={"description": "srt (SubRip captions), vtt (WebVTT captions), txt (plain "
                  "text) or json (the same body as GET of the transcription)."})


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- responses


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


class QuickstartCreatedSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "Always 'queued' here."})


class QuickstartTranscriptionSchema(Schema):
    """``GET /transcribe/{id}``: poll until status is 'completed' or 'failed'."""

    id = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "queued, processing, completed or failed."})
    progress = fields.Float(metadata={"description": "0..1 while processing; 1 when done."})
    audio_duration_seconds = fields.Float(allow_none=True)
    cost_cents = CentsField(attribute="cost_micro_usd", metadata={
        "type": "number", "description": "0.20 USD per hour, billed per second; 4 decimals."})
    error = fields.String(attribute="error_message", allow_none=True, metadata={
        "description": "On failed: what went wrong and what to do."})
    error_code = fields.String(allow_none=True)
    result = fields.Nested(ResultSchema, allow_none=True)
    created_at = UtcDateTime()
    completed_at = UtcDateTime(allow_none=True)


class UploadSchema(Schema):
    """``GET /api/v1/uploads/{id}``."""

    id = fields.String(required=True, metadata={"description": "up_…"})
    object = fields.Constant("upload")
    status = fields.Method("_status", metadata={
        "type": "string", "description": "pending (waiting for the PUT of the file), uploaded "
        "(ready for a transcription), used (a transcription took it), deleted (its file was "
        "deleted: after its transcription ended, or when unused for too long) or expired "
        "(its upload URL expired before a file arrived)."})
    filename = fields.String(allow_none=True)
    content_type = fields.String(allow_none=True)
    size_bytes = fields.Integer(allow_none=True, metadata={"description": "Once uploaded."})
    sha256 = fields.String(allow_none=True, metadata={
        "description": "Hex SHA-256 of the bytes received, to compare with your own."})
    created_at = UtcDateTime()
    expires_at = UtcDateTime(attribute="url_expires_at", metadata={
        "description": "When the upload URL stops working."})
    uploaded_at = UtcDateTime(allow_none=True)
    delete_after = fields.Method("_delete_after", allow_none=True, metadata={
        "type": "string", "format": "date-time", "description": "While uploaded: when the "
        "file is deleted if no transcription uses it by then; null otherwise."})
    transcription_id = fields.String(allow_none=True, metadata={
        "description": "The transcription that used it."})

    def _delete_after(self, upload: Any) -> str | None:
        if upload.status != "uploaded" or upload.delete_after is None:
            return None
        return UtcDateTime()._serialize(upload.delete_after, None, upload)

    def _status(self, upload: Any) -> str:
        expires = upload.url_expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if upload.status == "pending" and expires <= datetime.now(UTC):
            return "expired"
        return upload.status


class UploadCreatedSchema(UploadSchema):
    """``POST /api/v1/uploads``: where and how to send the file."""

    upload_url = fields.String(required=True, metadata={
        "description": "PUT the file's bytes here (the raw body; no API key: the URL is "
        "signed) before expires_at. Once only."})
    method = fields.Constant("PUT")
    max_bytes = fields.Integer(required=True, metadata={
        "description": "The largest file accepted, in bytes."})


class V1ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class V1TranscriptionSchema(Schema):
    """``GET /api/v1/transcriptions/{id}``."""

    id = fields.String(required=True, metadata={"description": "tr_… (also found through "
                                                 "/transcribe/{id})."})
    object = fields.Constant("transcription")
    status = fields.String(required=True)
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
    cost_usd = UsdStringField(attribute="cost_micro_usd", metadata={
        "type": "string", "description": "Exact decimal dollars, the pipeline's price a "
        "minute prorated per second."})
    error = fields.Method("_error", allow_none=True, metadata={"description": "On failed."})
    result = fields.Nested(ResultSchema, allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    completed_at = UtcDateTime(allow_none=True)

    def _error(self, obj: Any) -> dict[str, str] | None:
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}


class PipelineSchema(Schema):
    code = fields.String(required=True)
    description = fields.String()
    aliases = fields.List(fields.String())
    price_per_minute_usd = fields.Decimal(as_string=True, metadata={
        "description": "Exact decimal dollars per minute of audio, billed per second."})
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1 codes."})
    can_diarize = fields.Boolean()
    default = fields.Boolean(metadata={"description": "Used when a request names none."})


class PipelineListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(PipelineSchema))


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ApiErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class HealthSchema(Schema):
    status = fields.String()


class ReadinessSchema(Schema):
    status = fields.String(metadata={"description": "'ready' or 'not_ready'."})
    checks = fields.Dict(keys=fields.String(), values=fields.Dict())
    missing = fields.List(fields.String(), metadata={"description": "What keeps the service "
                                                      "from being ready, and how to fix it."})
