"""The transcription requests of both surfaces (create, list, export) and the pipelines list.

Requests are strict: unknown fields, wrong JSON types and contradictions are refused with the
field named. What a transcription looks like in answers is ``app.transcriptions.representation``
(the webhook outbox sends the same bodies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from app.api.schemas.common import (
    WEBHOOK_SIGNING,
    StrictBoolean,
    StrictQueryBoolean,
    Text,
    validate_http_url,
)
from app.transcriptions.exports import FORMATS
from app.transcriptions.languages import is_iso_639_1
from app.transcriptions.representation import (
    TRANSCRIPTION_STATUSES,
    V1TranscriptionSchema,
)


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


def _upload_id_field(description: str) -> Text:
    return Text(validate=validate_upload_id, load_default=None,
                metadata={"description": description})


#: The most speakers a request may ask for (a bound on the diarizer's clustering work).
MAX_SPEAKERS = 50


def _speaker_number(description: str) -> fields.Integer:
    return fields.Integer(
        strict=True, allow_none=True, load_default=None,
        validate=validate.Range(min=1, max=MAX_SPEAKERS,
                                error=f"Must be between 1 and {MAX_SPEAKERS}."),
        metadata={"description": description})


class NameListField(fields.List):
    """Names as a JSON list (``["summary", "topics"]``), or comma-separated in a form field
    or query parameter (``summary,topics``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(validate=validate.Length(min=1, max=64)), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        names = super()._deserialize(value, attr, data, **kwargs)
        if len(names) != len(set(names)):
            raise ValidationError("A name is given twice: give each once.")
        return names


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
    language = Text(
        validate=validate_language, allow_none=True, load_default=None,
        metadata={"description": "ISO 639-1 code of the spoken language; absent (or 'auto' on "
                  "v1) detects it. Passing it is faster and avoids misdetection."})
    analysis = NameListField(metadata={
        "description": "AI analyses to run on the transcript, by name (e.g. [\"summary\", "
        "\"action_items\"]; GET /api/v1/pipelines lists each pipeline's). Their answers are "
        "in result.analysis, each validated against its JSON schema; one that fails is "
        "marked failed with the reason (and not charged) while the transcript completes."})
    webhook_url = Text(
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


class QuickstartCreateSchema(_RequestSchema):
    """Body of ``POST /transcribe``: the ``url`` of the audio, or the ``upload_id`` of a file
    uploaded beforehand."""

    url = Text(
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

    source = Text(
        required=True,
        validate=validate.OneOf(SOURCES, error="Must be 'external_url' or 'upload'."),
        error_messages={"required": "Missing: set source to 'external_url' (and give a url) "
                        "or 'upload' (and give an upload_id)."},
        metadata={"description": "Where the audio comes from: 'external_url' (fetched from "
                  "url) or 'upload' (the file of upload_id)."})
    url = Text(
        validate=validate_http_url, load_default=None,
        metadata={"description": "With source 'external_url': the audio or video to fetch."})
    upload_id = _upload_id_field(
        "With source 'upload': the upload (POST /api/v1/uploads) whose file was sent to its "
        "upload_url. Each upload serves one transcription.")
    pipeline_code = Text(
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

    source = Text(
        load_default="upload",
        validate=validate.OneOf(["upload"], error="With a file, source is 'upload' (or "
                                "leave it out); to fetch a URL instead, send JSON without "
                                "a file."),
        metadata={"description": "'upload' (the default with a file)."})


#: The fields a file replaces: sent together with a file they are refused, by name.
FILE_REPLACES = ("url", "upload_id")


def fields_from_strings(schema: Schema, values: Mapping[str, Sequence[str]], *,
                        empty_is_absent: bool = True) -> dict[str, Any]:
    """Form fields or query parameters (strings, possibly repeated) as the JSON body the
    schema expects, so they meet the same strict rules and messages as JSON.

    A field the schema declares boolean takes ``true`` / ``false`` (any case), an integer
    field takes digits; any other string is left as it is, for the schema to refuse with the
    field named (``diarize=maybe``: "Not a boolean"). Empty form fields count as absent, since
    form builders send empty fields (``empty_is_absent``); an empty query parameter is
    refused, like any value of the wrong type. A field given twice is refused.
    """
    payload: dict[str, Any] = {}
    repeated: dict[str, list[str]] = {}
    for name, items in values.items():
        if not empty_is_absent and "" in items:
            repeated[name] = ["Empty: give a value, or leave the parameter out."]
            continue
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


class ExportQuerySchema(Schema):
    """Query of both surfaces' ``GET …/{id}/export``."""

    format = Text(
        required=True,
        validate=validate.OneOf(list(FORMATS), error="Must be one of: {choices}."),
        error_messages={"required": f"Missing: choose one of: {', '.join(FORMATS)}."},
        metadata={"description": "srt (SubRip captions), vtt (WebVTT captions), txt (plain "
                  "text) or json (the same body as GET of the transcription)."})


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
    starting_after = Text(
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


class QuickstartCreatedSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "Always 'queued' here."})


class TranscriptionListSchema(Schema):
    """``GET /api/v1/transcriptions``: one page, newest first."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(V1TranscriptionSchema), metadata={
        "description": "Newest first: by created_at, then id, both descending. Without "
        "result when include_result is false."})
    has_more = fields.Boolean(metadata={"description": "Whether older items follow."})
    next_starting_after = Text(allow_none=True, metadata={
        "description": "Pass as starting_after for the next page; null on the last one."})


class TranscriptionDeletedSchema(Schema):
    """``DELETE /api/v1/transcriptions/{id}``."""

    id = fields.String(required=True)
    object = fields.Constant("transcription")
    deleted = fields.Constant(True)


class PipelineEngineSchema(Schema):
    kind = fields.String(metadata={
        "enum": ["faster-whisper", "openai-compatible"],
        "description": "faster-whisper: a model on this server's workers; openai-compatible: "
        "a remote engine speaking OpenAI's audio API (vLLM, speaches, OpenAI, …)."})
    model = fields.String(metadata={"description": "The model it runs."})


class PipelineCapabilitiesSchema(Schema):
    words = fields.Boolean(metadata={"description": "Results carry word timings."})
    speakers = fields.Boolean(metadata={"description": "diarize: true is accepted."})
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1 codes."})
    analysis = fields.List(fields.String(), metadata={
        "description": "The AI analyses a request may ask for with analysis: [...]."})


class PipelineSchema(Schema):
    code = fields.String(required=True)
    description = fields.String()
    aliases = fields.List(fields.String())
    price_per_minute_usd = fields.Decimal(as_string=True, metadata={
        "type": "string", "format": "decimal", "example": "0.0285",
        "description": "Exact decimal dollars per minute of audio (a string, so it stays "
        "exact), billed per second."})
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1 codes."})
    can_diarize = fields.Boolean()
    default = fields.Boolean(metadata={"description": "Used when a request names none."})
    price_per_analysis_usd = fields.Decimal(as_string=True, metadata={
        "type": "string", "format": "decimal", "example": "0.01",
        "description": "Exact decimal dollars per AI analysis that completes (a string, so "
        "it stays exact), on top of the audio; \"0\": the price a minute covers analyses."})
    engine = fields.Nested(PipelineEngineSchema)
    capabilities = fields.Nested(PipelineCapabilitiesSchema)


class PipelineListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(PipelineSchema))
