"""Queries and small answers about existing transcriptions: export, listing (keyset pages with
filters), created and deleted bodies of both surfaces."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.api.schemas.common import StrictQueryBoolean, Text
from app.transcriptions.exports import FORMATS
from app.transcriptions.representation import TRANSCRIPTION_STATUSES, V1TranscriptionSchema


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
