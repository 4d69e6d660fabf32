"""Direct uploads (SPEC.md section 5): ``/api/v1/uploads``, and the signed internal download
of an uploaded file for workers on other machines (``/internal/media/{id}``).

Creating and reading an upload needs an API key. Sending its bytes does not: like a
presigned object-store URL, the signed ``upload_url`` is the permission, so a browser or a
tool without the key can send the file. Bytes are streamed to storage, never held in memory.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from werkzeug.wsgi import wrap_file

from app.api.auth import authenticate, caller
from app.api.edge import raw_body
from app.api.openapi import PUBLIC, link, links
from app.api.schemas.common import ApiErrorSchema
from app.api.schemas.uploads import (
    SignedUrlQuerySchema,
    UploadCreatedSchema,
    UploadCreateSchema,
    UploadSchema,
)
from app.media.storage import CHUNK_BYTES

blp = Blueprint("uploads", __name__, url_prefix="/api/v1/uploads",
                description="Direct uploads: files without a public URL.")
internal_blp = Blueprint("internal", __name__, url_prefix="/internal",
                         description="For workers on other machines; signed URLs only.")

#: Views whose signed URL is their credential, not an API key.
_SIGNED = frozenset({"uploads.put_content"})

_upload = UploadSchema()
_created = UploadCreatedSchema()
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@blp.before_request
def _authenticate() -> None:
    if request.endpoint not in _SIGNED:
        authenticate()


def _uploads():
    return current_app.extensions["voxhook"].uploads


@blp.route("", methods=["POST"])
@blp.arguments(UploadCreateSchema, required=False)
@blp.doc(**links(201, GetUpload=link("/api/v1/uploads/{upload_id}", "get", "Read it.",
                                     upload_id="$response.body#/id")))
@blp.response(201, UploadCreatedSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing, unknown or revoked key.")
@blp.alt_response(422, schema=ApiErrorSchema, description="A field is invalid; each is named.")
def create_upload(payload: dict[str, Any]):
    """Ask for an upload: answers a signed ``upload_url`` to PUT the file's bytes to.

    Then ``PUT`` the raw bytes to ``upload_url`` (no API key: the URL is signed) before
    ``expires_at``, at most ``max_bytes``; then create the transcription with
    ``source: "upload"`` and this ``upload_id`` (``POST /transcribe`` takes ``upload_id``
    too). An uploaded file no transcription uses is deleted after a while (see
    ``delete_after``); a used one when its transcription ends.
    """
    base_url = request.host_url  # app.media.uploads prefers VOXHOOK_PUBLIC_URL when it is set
    new = _uploads().create(caller(), base_url, payload.get("filename"),
                            payload.get("content_type"))
    body = {**_created.dump(new.upload), "upload_url": new.upload_url,
            "max_bytes": new.max_bytes}
    response = jsonify(body)
    response.status_code = 201
    return response


@blp.route("/<upload_id>", methods=["GET"])
@blp.response(200, UploadSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description="Missing, unknown or revoked key.")
@blp.alt_response(404, schema=ApiErrorSchema, description="No such upload for this account.")
def get_upload(upload_id: str):
    """An upload: whether its file has arrived, its size and SHA-256, who used it."""
    return _uploads().get(caller(), upload_id)


@blp.route("/<upload_id>/content", methods=["PUT"])
@blp.arguments(SignedUrlQuerySchema, location="query")
@blp.doc(requestBody={"required": True, "description": "The file's raw bytes, with its "
                      "Content-Type (any). Content-Length or chunked transfer encoding.",
                      "content": {"application/octet-stream": _BINARY, "audio/*": _BINARY,
                                  "video/*": _BINARY, "*/*": _BINARY}}, **PUBLIC)
@blp.response(200, UploadSchema)
@blp.alt_response(403, schema=ApiErrorSchema, description="upload_url_invalid: the URL was "
                  "altered or belongs to another upload; upload_url_expired: past expires_at "
                  "(create a new upload).")
@blp.alt_response(409, schema=ApiErrorSchema, description="upload_already_received: this "
                  "upload has its file; an upload takes one file.")
@blp.alt_response(410, schema=ApiErrorSchema, description="upload_gone: the upload no longer "
                  "exists or was deleted.")
@blp.alt_response(413, schema=ApiErrorSchema, description="file_too_large: over max_bytes, by "
                  "Content-Length (refused before reading) or while streaming; nothing kept.")
@blp.alt_response(422, schema=ApiErrorSchema, description="The body is empty (names file); the "
                  "upload stays pending, so the same URL can be used again.")
@raw_body
def put_content(query: dict[str, str], upload_id: str):
    """Send an upload's file: the request body is the file, as is (the signed URL from
    ``POST /api/v1/uploads``; no API key).

    Answers 200 with the upload: ``status`` ``uploaded``, its ``size_bytes`` and ``sha256``
    to compare with your own.
    """
    upload = _uploads().receive(upload_id, query["expires"], query["signature"],
                                request.stream, request.content_length,
                                request.mimetype or None)
    return upload


@internal_blp.route("/media/<upload_id>", methods=["GET"])
@internal_blp.arguments(SignedUrlQuerySchema, location="query")
@internal_blp.doc(responses={"200": {"description": "The file's bytes.",
                                     "content": {"application/octet-stream": _BINARY}}},
                  **PUBLIC)
@internal_blp.alt_response(403, schema=ApiErrorSchema, description="download_url_invalid or "
                           "download_url_expired.")
@internal_blp.alt_response(404, schema=ApiErrorSchema, description="No such upload.")
@internal_blp.alt_response(410, schema=ApiErrorSchema, description="upload_gone: its file is "
                           "no longer stored.")
def download_media(query: dict[str, str], upload_id: str):
    """Download an uploaded file (for workers that do not share the API's data directory).

    The URL is signed by the worker with the key API and workers share
    (``VOXHOOK_SECRET_KEY``) and expires after a few minutes; see
    ``app.media.uploads.internal_download_url``.
    """
    upload = _uploads().open_download(upload_id, query["expires"], query["signature"])
    storage = current_app.extensions["voxhook"].storage
    stream = storage.open_read(upload.storage_key)
    # Served as opaque bytes whatever the client declared, so no browser renders it.
    response = Response(wrap_file(request.environ, stream, buffer_size=CHUNK_BYTES),
                        mimetype="application/octet-stream", direct_passthrough=True)
    response.content_length = upload.size_bytes
    response.headers["Content-Disposition"] = f'attachment; filename="{upload.id}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
