"""Every request and response body of the API, defined once (they also make /openapi.json).

Requests are strict: unknown fields, wrong JSON types and contradictions are refused with the
field named. Responses are documented here even where the view hands over a stored dict, so
the OpenAPI document is the contract clients read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from app.billing.pricing import micro_usd_to_cents, micro_usd_to_usd
from app.store.models import WebhookEvent
from app.transcriptions.exports import FORMATS
from app.transcriptions.languages import is_iso_639_1

# --------------------------------------------------------------------------- custom fields


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"yes"`` or ``1`` are type errors, not booleans."""

    default_error_messages = {"invalid": "Not a boolean: send true or false."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictQueryBoolean(fields.Boolean):
    """A boolean query parameter: ``true`` or ``false`` (any case) only, so that a typo is
    refused instead of read as one or the other."""

    truthy = {"true", "True", "TRUE"}
    falsy = {"false", "False", "FALSE"}
    default_error_messages = {"invalid": "Not a boolean: send true or false."}


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


#: How every webhook is signed, for the descriptions of the fields that set one.
WEBHOOK_SIGNING = ("Signed per Standard Webhooks: headers webhook-id (the same on every "
                   "attempt: deduplicate on it), webhook-timestamp and webhook-signature "
                   "('v1,' + base64 HMAC-SHA256 of 'id.timestamp.body' under the account's "
                   "secret, GET /api/v1/webhook_secret).")


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
        metadata={"description": "Where to POST the transcription once it is completed or "
                  "failed: the same JSON as its GET, retried with back-off until a 2xx. Used "
                  "exactly as given, query string included; its host must resolve to public "
                  "addresses only (checked now and at every attempt). " + WEBHOOK_SIGNING})

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


#: Every status of a transcription on the v1 surface, in the order a job goes through them.
TRANSCRIPTION_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
#: The most items a page of a listing holds.
MAX_PAGE_SIZE = 100


class StatusListField(fields.List):
    """One or several statuses: ``status=queued&status=failed`` or ``status=queued,failed``.

    (A list, so that webargs hands over every repeat of the parameter.)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(metadata={"enum": list(TRANSCRIPTION_STATUSES)}),
                         **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any
                     ) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValidationError("Not a list of statuses.")
        statuses = [part.strip() for item in items for part in item.split(",") if part.strip()]
        unknown = [status for status in statuses if status not in TRANSCRIPTION_STATUSES]
        if unknown:
            raise ValidationError(f"Unknown status {', '.join(map(repr, unknown))}: use one "
                                  f"or several of {', '.join(TRANSCRIPTION_STATUSES)}.")
        return list(dict.fromkeys(statuses))


#: A time whose offset's '+' arrived as a space (an unencoded '+' in a query string).
_SPACED_OFFSET = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class InstantField(fields.Field):
    """An ISO 8601 moment, loaded as a timezone-aware UTC datetime.

    ``2026-01-31T09:30:00Z``, ``…+02:00``, or without an offset (taken as UTC); a date alone
    (``2026-01-31``) is its midnight UTC. A ``+`` offset sent unencoded in a query string
    (where it reads as a space) is understood too.
    """

    default_error_messages = {"invalid": (
        "Not an ISO 8601 date or time: use e.g. 2026-01-31T09:30:00Z, "
        "2026-01-31T11:30:00+02:00 or 2026-01-31 (midnight UTC).")}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class TranscriptionListQuerySchema(Schema):
    """Query of ``GET /api/v1/transcriptions``."""

    class Meta:
        unknown = RAISE  # a misspelt filter must not silently list everything

    limit = fields.Integer(
        load_default=20, validate=validate.Range(
            min=1, max=MAX_PAGE_SIZE, error=f"Must be between 1 and {MAX_PAGE_SIZE}."),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE_SIZE} (default 20)."})
    starting_after = fields.String(
        load_default=None, validate=validate.Length(min=1, max=40), metadata={
            "description": "A cursor: the id of the last item of the previous page (its "
            "next_starting_after); the page holds the items that come after it, older ones. "
            "It must be one of this account's transcriptions."})
    status = StatusListField(load_default=list, metadata={
        "description": "Only these statuses: repeat the parameter or separate them by "
        f"commas ({', '.join(TRANSCRIPTION_STATUSES)})."})
    created_after = InstantField(load_default=None, metadata={
        "type": "string", "format": "date-time", "description": "Only those created at or "
        "after this moment (inclusive). ISO 8601; without an offset, UTC; a date alone is "
        "its midnight UTC."})
    created_before = InstantField(load_default=None, metadata={
        "type": "string", "format": "date-time", "description": "Only those created before "
        "this moment (exclusive); same format as created_after."})
    include_result = StrictQueryBoolean(load_default=True, metadata={
        "description": "false leaves each transcription's result (the transcript, its "
        "utterances and words) out of the page: smaller pages for pollers that need only "
        "ids and statuses; GET /api/v1/transcriptions/{id} has the result."})

    @validates_schema
    def _window_is_not_empty(self, data: dict[str, Any], **_: Any) -> None:
        after, before = data.get("created_after"), data.get("created_before")
        if after is not None and before is not None and after >= before:
            message = (f"created_after ({after.isoformat()}) is not before created_before "
                       f"({before.isoformat()}): nothing could match; swap them or drop one.")
            raise ValidationError({"created_after": [message], "created_before": [message]})


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
    status = fields.Method("_status", required=True, metadata={
        "type": "string", "enum": ["queued", "processing", "completed", "failed"],
        "description": "queued, processing, completed or failed. A transcription cancelled "
        "through the v1 surface is failed here, with error_code 'cancelled'."})
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

    def _status(self, transcription: Any) -> str:
        """This contract's statuses end in completed or failed: a cancelled job failed."""
        return "failed" if transcription.status == "cancelled" else transcription.status


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
    cost_usd = UsdStringField(attribute="cost_micro_usd", metadata={
        "type": "string", "description": "Exact decimal dollars, the pipeline's price a "
        "minute prorated per second."})
    error = fields.Method("_error", allow_none=True, metadata={
        "description": "On failed (and cancelled): code and message."})
    result = fields.Nested(ResultSchema, allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    completed_at = UtcDateTime(allow_none=True)

    def _error(self, obj: Any) -> dict[str, str] | None:
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}


class TranscriptionListSchema(Schema):
    """``GET /api/v1/transcriptions``: one page, newest first."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(V1TranscriptionSchema), metadata={
        "description": "Newest first: by created_at, then id, both descending. Without "
        "result when include_result is false."})
    has_more = fields.Boolean(metadata={"description": "Whether older items follow."})
    next_starting_after = fields.String(allow_none=True, metadata={
        "description": "Pass as starting_after for the next page; null on the last one."})


class TranscriptionDeletedSchema(Schema):
    """``DELETE /api/v1/transcriptions/{id}``."""

    id = fields.String(required=True)
    object = fields.Constant("transcription")
    deleted = fields.Constant(True)


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


# --------------------------------------------------------------------------- account


def validate_key_name(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be empty: name the key after where it will be used.")
    if len(value.strip()) > 200:
        raise ValidationError("Must be at most 200 characters.")


class ApiKeyCreateSchema(Schema):
    """Body of ``POST /api/v1/keys``."""

    name = fields.String(
        required=True, validate=validate_key_name,
        error_messages={"required": "Missing: name the key after where it will be used "
                        "(e.g. 'zapier' or 'n8n-production'), so it can be told apart."},
        metadata={"description": "What the key is for (1 to 200 characters; surrounding "
                  "spaces are dropped)."})


class ApiKeySchema(Schema):
    """An API key as listed: never its secret, only its first characters."""

    id = fields.String(required=True, metadata={"description": "key_…"})
    object = fields.Constant("api_key")
    name = fields.String()
    prefix = fields.String(metadata={"description": "The secret's first characters "
                                     "(sk_live_ab12), to recognise it."})
    created_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True, metadata={"description": "Null while active."})
    active = fields.Boolean(attribute="is_active")


class ApiKeyListedSchema(ApiKeySchema):
    current = fields.Boolean(metadata={"description": "Whether this is the key making the "
                                       "request."})


class ApiKeyCreatedSchema(ApiKeySchema):
    """``POST /api/v1/keys``: the only time the secret is shown."""

    secret = fields.String(required=True, metadata={
        "description": "The key itself (sk_live_…). Shown once: store it now; only its hash "
        "is kept."})


class ApiKeyListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(ApiKeyListedSchema), metadata={
        "description": "Oldest first, revoked ones included."})


class MeAccountSchema(Schema):
    id = fields.String()
    name = fields.String()


class MeKeySchema(Schema):
    id = fields.String()
    name = fields.String()
    prefix = fields.String()


class BalancesSchema(Schema):
    """The wallet, in exact decimal dollars (strings)."""

    monthly_credit_usd = fields.String(metadata={
        "description": "Credit granted at the start of every calendar month (UTC)."})
    credit_remaining_usd = fields.String(metadata={
        "description": "Monthly credit left this month; spent first, expires at month end."})
    topup_usd = fields.String(metadata={"description": "Top-up balance, spent after the "
                                        "monthly credit; it does not expire."})
    held_usd = fields.String(metadata={"description": "Held for transcriptions running now."})
    available_usd = fields.String(metadata={
        "description": "What new transcriptions can spend: credit and top-up, less held."})
    period = fields.String(allow_none=True, metadata={
        "description": "The month (YYYY-MM, UTC) the monthly credit belongs to."})


class MeSchema(Schema):
    """``GET /api/v1/me``."""

    object = fields.Constant("me")
    account = fields.Nested(MeAccountSchema)
    key = fields.Nested(MeKeySchema, metadata={"description": "The key making the request."})
    billing = fields.String(metadata={
        "enum": ["on", "off"], "description": "on: transcriptions are paid from the wallet "
        "and refused when it cannot pay; off: costs are computed and shown, nothing is "
        "charged."})
    balances = fields.Nested(BalancesSchema)


#: The longest range GET /api/v1/usage answers, in days.
MAX_USAGE_DAYS = 366
#: The range it answers when none is given: the last 30 days (UTC), today included.
DEFAULT_USAGE_DAYS = 30


class UsageQuerySchema(Schema):
    """Query of ``GET /api/v1/usage``: a range of UTC days, both ends included."""

    class Meta:
        unknown = RAISE

    start = fields.Date(load_default=None, error_messages={
        "invalid": "Not a date: use YYYY-MM-DD (a UTC day)."}, metadata={
        "description": f"First day (YYYY-MM-DD, UTC), included; default: {DEFAULT_USAGE_DAYS} "
        "days up to end."})
    end = fields.Date(load_default=None, error_messages={
        "invalid": "Not a date: use YYYY-MM-DD (a UTC day)."}, metadata={
        "description": "Last day (YYYY-MM-DD, UTC), included; default: today (UTC)."})

    @post_load
    def _range(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Fill in the defaults, then check the range: in order, and not too long."""
        end = data["end"] or datetime.now(UTC).date()
        start = data["start"] or end - timedelta(days=DEFAULT_USAGE_DAYS - 1)
        if start > end:
            message = f"start ({start}) is after end ({end}): swap them, or give end too."
            raise ValidationError({"start": [message], "end": [message]})
        days = (end - start).days + 1
        if days > MAX_USAGE_DAYS:
            message = (f"The range {start}..{end} is {days} days long; ask for at most "
                       f"{MAX_USAGE_DAYS} days at a time (give both start and end).")
            raise ValidationError({"start": [message], "end": [message]})
        return {"start": start, "end": end}


class UsageFiguresSchema(Schema):
    spend_usd = fields.String(metadata={"description": "Exact decimal dollars: the costs of "
                                        "completed transcriptions."})
    audio_seconds = fields.Float(metadata={"description": "Their audio, in seconds (to the "
                                           "millisecond)."})
    transcriptions = fields.Integer(metadata={"description": "How many completed."})


class UsageDaySchema(UsageFiguresSchema):
    date = fields.String(metadata={"description": "YYYY-MM-DD (UTC)."})


class UsageKeySchema(Schema):
    key = fields.Nested(ApiKeySchema)
    total = fields.Nested(UsageFiguresSchema)
    days = fields.List(fields.Nested(UsageDaySchema), metadata={
        "description": "Days with usage only, oldest first."})


class UsageSchema(Schema):
    """``GET /api/v1/usage``."""

    object = fields.Constant("usage")
    start = fields.String(metadata={"description": "First day (UTC), included."})
    end = fields.String(metadata={"description": "Last day (UTC), included."})
    total = fields.Nested(UsageFiguresSchema, metadata={
        "description": "The account's; the keys' totals add up to it exactly."})
    days = fields.List(fields.Nested(UsageDaySchema), metadata={
        "description": "The account's days with usage, oldest first."})
    keys = fields.List(fields.Nested(UsageKeySchema), metadata={
        "description": "Keys with usage in the range (revoked ones too), oldest key first."})


# --------------------------------------------------------------------------- webhooks


#: What an endpoint can subscribe to (the ``type`` of the envelope it receives).
WEBHOOK_EVENTS = tuple(str(event) for event in WebhookEvent)


def validate_events(value: list[str]) -> None:
    """At least one event, each one we send; every unknown one is named."""
    if not value:
        raise ValidationError(f"Must not be empty: choose one or more of "
                              f"{', '.join(WEBHOOK_EVENTS)} (or leave events out for all).")
    unknown = [event for event in value if event not in WEBHOOK_EVENTS]
    if unknown:
        raise ValidationError(f"Unknown event {', '.join(map(repr, unknown))}: choose one or "
                              f"more of {', '.join(WEBHOOK_EVENTS)}.")


class WebhookEndpointCreateSchema(Schema):
    """Body of ``POST /api/v1/webhook_endpoints``."""

    url = fields.String(
        required=True, validate=validate_http_url,
        error_messages={"required": "Missing: the http(s) URL to POST events to (e.g. an n8n "
                        "trigger's or a Zapier REST hook's URL)."},
        metadata={"description": "Where to POST each event (the WebhookEventEnvelope), "
                  "used exactly as given, query string included. Its host must resolve to "
                  "public addresses only (checked now and at every attempt). "
                  + WEBHOOK_SIGNING})
    events = fields.List(
        fields.String(), validate=validate_events, load_default=lambda: list(WEBHOOK_EVENTS),
        metadata={"description": "Which events to receive: "
                  f"{', '.join(WEBHOOK_EVENTS)}; default: all."})
    description = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=200),
        metadata={"description": "What it is for, for your records (at most 200 "
                  "characters)."})

    @post_load
    def _distinct_events(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "events": list(dict.fromkeys(data["events"]))}


class WebhookEndpointSchema(Schema):
    """An account's subscription: every matching event of the account is POSTed to it."""

    id = fields.String(required=True, metadata={"description": "we_…"})
    object = fields.Constant("webhook_endpoint")
    url = fields.String(required=True)
    events = fields.List(fields.String(metadata={"enum": list(WEBHOOK_EVENTS)}))
    description = fields.String(allow_none=True)
    created_at = UtcDateTime()


class WebhookEndpointListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(WebhookEndpointSchema), metadata={
        "description": "The account's endpoints, oldest first (deleted ones are not listed)."})


class WebhookEndpointDeletedSchema(Schema):
    """``DELETE /api/v1/webhook_endpoints/{id}``."""

    id = fields.String(required=True)
    object = fields.Constant("webhook_endpoint")
    deleted = fields.Constant(True)


class WebhookEventEnvelopeSchema(Schema):
    """What a webhook endpoint receives: Standard Webhooks' recommended shape, signed like
    every webhook (see WebhookSecret)."""

    type = fields.String(required=True, metadata={
        "enum": list(WEBHOOK_EVENTS), "description": "What happened."})
    timestamp = UtcDateTime(required=True, metadata={"description": "When it happened."})
    data = fields.Nested(V1TranscriptionSchema, required=True, metadata={
        "description": "The transcription, as GET /api/v1/transcriptions/{id} answers it."})


class WebhookAttemptSchema(Schema):
    """One try at a delivery."""

    attempted_at = UtcDateTime()
    status_code = fields.Integer(allow_none=True, metadata={
        "description": "The receiver's HTTP status; null when none came back (refused "
        "address, connection error, timeout: see error)."})
    latency_ms = fields.Integer(metadata={"description": "From sending to the answer."})
    error = fields.String(allow_none=True, metadata={
        "description": "Why it failed, when it did."})
    next_attempt_at = UtcDateTime(allow_none=True, metadata={
        "description": "When the next attempt was scheduled; null when this one ended the "
        "delivery (delivered, refused for good, or out of retries)."})


class WebhookDeliverySchema(Schema):
    """One message to one URL, with every attempt to deliver it."""

    id = fields.String(required=True, metadata={
        "description": "msg_…: the webhook-id header, the same on every attempt."})
    object = fields.Constant("webhook_delivery")
    event = fields.String(metadata={"enum": list(WEBHOOK_EVENTS)})
    url = fields.String()
    endpoint_id = fields.String(allow_none=True, metadata={
        "description": "The subscription it went to; null for the transcription's own "
        "webhook_url."})
    status = fields.String(metadata={
        "enum": ["pending", "delivered", "failed"],
        "description": "pending (an attempt is due at next_attempt_at), delivered (a 2xx "
        "came back) or failed (refused for good, out of retries, or its endpoint was "
        "deleted: see last_error)."})
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    delivered_at = UtcDateTime(allow_none=True, metadata={
        "description": "When a 2xx last came back."})
    attempts = fields.List(fields.Nested(WebhookAttemptSchema), metadata={
        "description": "Every attempt, oldest first."})


class WebhookDeliveryListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(WebhookDeliverySchema), metadata={
        "description": "Oldest first: the transcription's own webhook_url, then each "
        "subscription."})


class WebhookSecretSchema(Schema):
    """``GET /api/v1/webhook_secret``: what receivers verify signatures with."""

    object = fields.Constant("webhook_secret")
    secret = fields.String(required=True, metadata={
        "description": "whsec_… followed by base64 of the key bytes (Standard Webhooks)."})
    previous_valid_until = UtcDateTime(allow_none=True, metadata={
        "description": "After a rotation: deliveries also carry a signature by the previous "
        "secret until then, so receivers can switch without missing one; null otherwise."})


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
