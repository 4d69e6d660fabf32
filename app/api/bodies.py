"""What a create request carries: JSON fields, or a file with its fields (one-request upload).

``POST /transcribe`` and ``POST /api/v1/transcriptions`` choose by Content-Type:

- ``application/json``: the fields, as always;
- ``multipart/form-data`` (or ``application/x-www-form-urlencoded``): the same fields as form
  fields (``true``/``false``, digits) and, optionally, the audio as a ``file`` part;
- anything else (``audio/*``, ``video/*``, ``application/octet-stream``, none): the body is
  the file and the fields are query parameters.

A file is never held in memory: a multipart part is spooled by :class:`SpoolingRequest` to a
file in the data directory (then moved into storage), a raw body is streamed into storage.
The fields meet the same schema as JSON (after :func:`app.api.schemas.fields_from_strings`), so
they get the same strict rules and field-named errors.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from flask import Request, current_app, request
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest
from werkzeug.http import parse_options_header

from app.api.errors import invalid_fields
from app.api.schemas.transcriptions import FILE_REPLACES, fields_from_strings
from app.billing.keys import Caller
from app.errors import InvalidJson
from app.media.uploads import UploadService
from app.store.models import Upload

#: The name of the multipart part that holds the file.
FILE_FIELD = "file"
#: What a multipart body may carry besides the file (boundaries, part headers, fields).
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class SpoolingRequest(Request):
    """Flask's request, with multipart file parts written to ``<data dir>/media/incoming``.

    Werkzeug keeps a part in memory up to 500 KB and then in an anonymous temporary file; a
    named file next to the storage folder instead can be moved into storage with a rename.
    Whatever was not moved is removed when the request ends.
    """

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None
                         ) -> IO[bytes]:
        folder = current_app.extensions["voxhook"].settings.data_dir / "media" / "incoming"
        folder.mkdir(parents=True, exist_ok=True)
        # Closed by Request.close (werkzeug closes every part), removed by ours below.
        spooled = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=folder, prefix=".part-", delete=False)
        self.__dict__.setdefault("_spooled_paths", []).append(Path(spooled.name))
        return spooled

    def close(self) -> None:
        try:
            super().close()
        finally:
            for path in self.__dict__.get("_spooled_paths", ()):
                path.unlink(missing_ok=True)


class IncomingFile(Protocol):
    """A file that came with the request, not yet in storage."""

    def store(self, uploads: UploadService, caller: Caller) -> Upload: ...


@dataclass(frozen=True)
class RawBodyFile:
    """The request's raw body is the file: streamed into storage as it arrives."""

    filename: str | None
    content_type: str | None

    def store(self, uploads: UploadService, caller: Caller) -> Upload:
        return uploads.store_direct(caller, request.stream, request.content_length,
                                    self.filename, self.content_type)


@dataclass(frozen=True)
class SpooledPart:
    """A multipart ``file`` part, already on disk: moved into storage."""

    part: FileStorage

    def store(self, uploads: UploadService, caller: Caller) -> Upload:
        self.part.stream.flush()
        return uploads.store_direct_file(caller, Path(self.part.stream.name),
                                         self.part.filename or None,
                                         self.part.mimetype or None)


@dataclass(frozen=True)
class CreateBody:
    """The loaded fields, and the file when the request brought one."""

    fields: dict[str, Any]
    file: IncomingFile | None = None


def read_create_body(schema: type[Schema], file_schema: type[Schema]) -> CreateBody:
    """The create request's fields (loaded by ``schema``, or by ``file_schema`` when a file
    comes along) and its file, whatever the Content-Type; 422 naming each bad field."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        _refuse_query_fields(file_schema, "a JSON body")
        return CreateBody(_load(schema, _json_body()))
    if mimetype in _FORM_TYPES:
        _refuse_query_fields(file_schema, "a form body")
        return _read_form(schema, file_schema)
    if not mimetype and not _has_body():
        return CreateBody(_load(schema, {}))  # nothing sent: name the missing fields
    fields = _file_fields(file_schema, _strings(file_schema, dict(request.args.lists()),
                                                empty_is_absent=False))
    return CreateBody(fields, RawBodyFile(_disposition_filename(), mimetype or None))


def _refuse_query_fields(file_schema: type[Schema], body: str) -> None:
    """Fields go in the body when there is one: the same field in the query string would be
    ignored, so it is refused instead of silently lost."""
    misplaced = {name: [f"With {body}, send {name} in the body, not in the query string."]
                 for name in request.args if name in file_schema().fields}
    if misplaced:
        raise invalid_fields(misplaced)


def _read_form(schema: type[Schema], file_schema: type[Schema]) -> CreateBody:
    limit = current_app.extensions["voxhook"].settings.uploads.max_bytes
    request.max_content_length = limit + MULTIPART_OVERHEAD_BYTES  # 413 while parsing
    strays = {name: ["Unknown file part: send the file as the part named 'file'."]
              for name in request.files if name != FILE_FIELD}
    parts = request.files.getlist(FILE_FIELD)
    if len(parts) > 1:
        strays[FILE_FIELD] = ["Send one file per request."]
    if FILE_FIELD in request.form:
        strays[FILE_FIELD] = ["Send the file as a file part (with a filename), not as a text "
                              "field."]
    if strays:
        raise invalid_fields(strays)
    values = dict(request.form.lists())
    if not parts:
        return CreateBody(_load(schema, _strings(schema, values)))
    fields = _file_fields(file_schema, _strings(file_schema, values))
    return CreateBody(fields, SpooledPart(parts[0]))


def _file_fields(schema: type[Schema], values: dict[str, Any]) -> dict[str, Any]:
    """Fields that come with a file: url and upload_id would contradict it."""
    refused = {name: [f"Send either a file or {name}, not both: the file is the audio."]
               for name in FILE_REPLACES if name in values}
    if refused:
        raise invalid_fields(refused)
    return _load(schema, values)


def _strings(schema: type[Schema], values: dict[str, list[str]], *,
             empty_is_absent: bool = True) -> dict[str, Any]:
    try:
        return fields_from_strings(schema(), values, empty_is_absent=empty_is_absent)
    except ValidationError as error:
        raise invalid_fields(error.messages) from None


def _load(schema: type[Schema], data: Any) -> dict[str, Any]:
    try:
        return schema().load(data)
    except ValidationError as error:
        raise invalid_fields(error.messages) from None


def _json_body() -> Any:
    if not request.get_data(cache=True):
        return {}  # as if no field was sent: each required one is named
    try:
        return request.get_json()
    except BadRequest:
        raise InvalidJson("The request body is not valid JSON; send a JSON object with "
                          "Content-Type: application/json.") from None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def _disposition_filename() -> str | None:
    """The file's name from ``Content-Disposition: attachment; filename="…"``, if sent."""
    header = request.headers.get("Content-Disposition")
    if not header:
        return None
    name = parse_options_header(header)[1].get("filename")
    return name[:255] if name else None

