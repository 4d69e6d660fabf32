"""gunicorn's threaded worker, answering the requests gunicorn itself refuses in our JSON.

gunicorn parses each request before the application sees it and refuses on its own what
breaks HTTP or its limits (a request line over ``--limit-request-line``, more than
``--limit-request-fields`` headers or one over ``--limit-request-field_size``, a malformed
header or chunk). Its answer is an HTML page; a client of this API must get the one error
shape instead, with a code and a message that says what to change. gunicorn's documented
seam for that is the worker class (:data:`app.ops.api_process.JSON_ERROR_WORKERS` names one
for gthread and one for gevent): its ``handle_error`` writes the answer.
The status codes are gunicorn's own; the ``code`` is the one werkzeug's error of that status
gets in the application (:func:`app.api.errors.http_error_code`), so a client sees the same
code whichever layer refused the request.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from ssl import SSLError
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import default_exceptions

from app.api.errors import http_error_code
from app.errors import ApiError


class JsonErrors:
    """Mixed into a gunicorn worker class: its own error answers in the API's JSON shape."""

    log: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        error = protocol_error(exc)
        address = (addr or ("", -1))[0]
        if error.status >= 500:
            self.log.exception("Error handling request from ip=%s", address)
        else:
            self.log.warning("Invalid request from ip=%s: %s", address, exc)
        try:
            util.write_nonblock(client, http_answer(error))
        except Exception:  # the client may be gone; there is nobody left to tell
            self.log.debug("Failed to send error message.")


class JsonErrorThreadWorker(JsonErrors, ThreadWorker):
    """``gthread``, with gunicorn's own error answers in the API's JSON error shape."""


def protocol_error(exc: BaseException) -> ApiError:
    """The error to answer for a request gunicorn could not hand to the application."""
    if isinstance(exc, (InvalidResponseHeader, InvalidResponseHeaderName)):
        return _error(500, "The server failed to write its answer; tell the operator.")
    if isinstance(exc, LimitRequestLine):
        return _error(414, f"The request line (method, path and query string) is too long "
                      f"({exc}); send long values in a JSON body instead of the URL.")
    if isinstance(exc, LimitRequestHeaders):
        return _error(431, f"The request's headers are too large or too many ({exc}); send "
                      "fewer or shorter headers.")
    if isinstance(exc, UnsupportedTransferCoding):
        return _error(501, f"{exc}: send the body with Content-Length or chunked.")
    if isinstance(exc, ExpectationFailed):
        return _error(417, f"{exc}; only 'Expect: 100-continue' is understood.")
    if isinstance(exc, ForbiddenProxyRequest):
        return _error(403, "This request was refused by the server's proxy settings.")
    if isinstance(exc, ConfigurationProblem):
        return _error(500, "The server's configuration refused this request; tell the "
                      "operator.")
    if isinstance(exc, (ParseException, SSLError)):
        return _error(400, f"The request is not valid HTTP/1.1: {exc}.")
    return _error(500, "The server failed to handle this request; try again, and tell the "
                  "operator if it keeps happening.")


def _error(status: int, message: str) -> ApiError:
    error = ApiError(message)
    error.status = status
    error.code = (http_error_code(default_exceptions[status]().name)
                  if status in default_exceptions else ApiError.code)
    if status == 500:
        error.code = ApiError.code  # internal_error, as the application answers it
    return error


def http_answer(error: ApiError) -> bytes:
    """A complete HTTP/1.1 response carrying ``error``; the connection is closed after it
    (the rest of what the client sent cannot be read as a request)."""
    body = json.dumps(error.body()).encode("utf-8")
    head = (f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body
