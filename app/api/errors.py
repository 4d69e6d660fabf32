"""The handlers that answer every failure as JSON, in the one shape of ``app.errors``.

Errors raised by the services (:class:`app.errors.ApiError`), Flask's and webargs' own (bad
JSON, failed validation, 404, 405, an over-large multipart body) and anything unexpected all
leave as ``{"error": {"code", "message", ...}}``; marshmallow's messages become a 422 that names
every offending field.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from app.errors import ApiError, FileTooLarge, InvalidJson, ValidationFailed

if TYPE_CHECKING:
    from flask import Flask, Response
    from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def error_response(error: ApiError) -> Response:
    from flask import jsonify

    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def describe_fields(messages: Any) -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into ``{"field.sub": ["message", ...]}``."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                name = "body" if key == "_schema" and not prefix else str(key)
                walk(f"{prefix}.{name}" if prefix else name, value)
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            flat.setdefault(prefix or "body", []).extend(node)
        else:
            flat.setdefault(prefix or "body", []).append(str(node))

    walk("", messages)
    return flat


def invalid_fields(messages: Any) -> ValidationFailed:
    """The 422 for marshmallow's messages: every offending field named, in the message too."""
    fields = describe_fields(messages)
    summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
    return ValidationFailed(f"The request is invalid. {summary}", fields=fields)


#: Where webargs found the arguments; it nests its messages under these keys.
_LOCATIONS = frozenset({"json", "query", "querystring", "form", "headers", "cookies", "files",
                        "json_or_form", "view_args", "path"})


def _unnest_location(messages: Any) -> Any:
    """``{"query": {"format": [...]}}`` -> ``{"format": [...]}``: clients name fields, not
    locations (each view reads arguments from one location)."""
    if isinstance(messages, dict) and len(messages) == 1:
        (location, located), = messages.items()
        if location in _LOCATIONS:
            return located
    return messages


def _from_http_exception(exc: HTTPException) -> ApiError:
    """Map Flask/webargs HTTP errors (bad JSON, failed validation, 404, 405…) onto ours."""
    if exc.code == 413:  # werkzeug's limit on a multipart body (see app.api.bodies)
        from flask import current_app

        return FileTooLarge(current_app.extensions["voxhook"].settings.uploads.max_bytes)
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages:
        # webargs nests messages by location: {"json": {...}}, {"query": {...}}.
        located = _unnest_location(messages)
        if exc.code == 400 and located == ["Invalid JSON body."]:
            return InvalidJson(
                "The request body is not valid JSON; send a JSON object with "
                "Content-Type: application/json."
            )
        return invalid_fields(located)
    generic = ApiError(exc.description or exc.name)
    generic.status = exc.code or 500
    generic.code = http_error_code(exc.name)
    return generic


def http_error_code(name: str | None) -> str:
    """Our code for an HTTP error werkzeug raised: its name in snake case (405 Method Not
    Allowed: ``method_not_allowed``)."""
    return re.sub(r"[^a-z0-9]+", "_", (name or "error").lower()).strip("_")


def error_codes_by_status() -> dict[int, list[str]]:
    """Every ``code`` an error answer can carry, by HTTP status (the OpenAPI document lists
    them): those of the :class:`app.errors.ApiError` hierarchy, and those of the HTTP errors
    werkzeug raises (an unknown path, a method not allowed…)."""
    from werkzeug.exceptions import default_exceptions

    found: dict[int, set[str]] = {}
    classes: list[type[ApiError]] = [ApiError]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        found.setdefault(cls.status, set()).add(cls.code)
    for status, exception in default_exceptions.items():
        if status != 413:  # answered as file_too_large (see _from_http_exception)
            found.setdefault(status, set()).add(http_error_code(exception().name))
    return {status: sorted(codes) for status, codes in sorted(found.items())}


def register_error_handlers(app: Flask) -> None:
    """Answer every error as JSON (registered after flask-smorest's own, so ours win)."""
    from gunicorn.http.errors import ParseException
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return error_response(_from_http_exception(exc))

    @app.errorhandler(ParseException)
    def _malformed_body(exc: ParseException) -> Response:
        """gunicorn found the body malformed while the application read it (a bad chunk)."""
        error = ApiError(f"The request body is not valid HTTP/1.1: {exc}; send it with a "
                         "correct Content-Length or chunked encoding.")
        error.status, error.code = 400, http_error_code("Bad Request")
        return error_response(error)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error while serving a request")
        return error_response(
            ApiError("The server failed to handle this request; try again, and tell the "
                     "operator if it keeps happening.")
        )
