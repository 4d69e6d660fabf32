"""``/api/v1/uploads``: create an upload, send its file to the signed URL, read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    fields,
    validate,
)

from app.api.schemas.common import Text
from app.transcriptions.representation import (
    UtcDateTime,
)


class UploadCreateSchema(Schema):
    """Body of ``POST /api/v1/uploads`` (optional: both fields are metadata)."""

    filename = Text(
        load_default=None, allow_none=True, validate=validate.Length(max=255),
        metadata={"description": "The file's name, for your records (e.g. call.mp3)."})
    content_type = Text(
        load_default=None, allow_none=True, validate=validate.Length(max=255),
        metadata={"description": "The file's media type (e.g. audio/mpeg); the PUT's "
                  "Content-Type, when it sends one, takes its place."})


class SignedUrlQuerySchema(Schema):
    """Query of a signed URL; the service writes both, clients copy the URL as it is."""

    class Meta:
        unknown = EXCLUDE  # a signed URL is honoured whatever else is appended to it

    expires = Text(load_default="", metadata={
        "description": "Unix time after which the URL is refused."})
    signature = Text(load_default="", metadata={
        "description": "HMAC-SHA256 of the purpose, the id and expires."})


class UploadSchema(Schema):
    """``GET /api/v1/uploads/{id}``."""

    id = fields.String(required=True, metadata={"description": "up_…"})
    object = fields.Constant("upload")
    status = fields.Method("_status", metadata={
        "type": "string", "description": "pending (waiting for the PUT of the file), uploaded "
        "(ready for a transcription), used (a transcription took it), deleted (its file was "
        "deleted: after its transcription ended, or when unused for too long) or expired "
        "(its upload URL expired before a file arrived)."})
    filename = Text(allow_none=True)
    content_type = Text(allow_none=True)
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
