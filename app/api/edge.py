"""The request's edge: what every request must satisfy before any view or schema sees it.

Checked here once, for every route (those added later included), so that no crafted input
reaches the database, the queue or a parser that would fail with a 500:

- a JSON body (``application/json`` or ``…+json``) is at most :data:`MAX_JSON_BYTES`, UTF-8,
  strict JSON (no ``NaN`` / ``Infinity``, integers of at most :data:`MAX_INTEGER_DIGITS`
  digits), nested at most :data:`MAX_JSON_DEPTH` deep, and none of its strings (keys
  included) holds a control character other than tab, newline and carriage return, or an
  unpaired surrogate (``"\\ud800"``: no UTF-8 encoding exists, PostgreSQL refuses NUL);
- path parameters and query parameters (names and values) hold no control character;
- a body comes with a Content-Type its operation's OpenAPI ``requestBody`` declares (a 415
  lists them), so that fields sent as ``text/plain`` are refused, not silently ignored.

Refusals are 4xx in the one error shape, naming the field (``body`` for the body as a whole,
``events.0`` for the first item of ``events``). Views whose body is a file of any type (the
signed upload PUT) are marked with :func:`raw_body` and skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import BodyTooLarge, InvalidJson, UnsupportedMediaType, ValidationFailed

#: The largest JSON body accepted. Request bodies are a few fields; files go elsewhere.
MAX_JSON_BYTES = 1024 * 1024
#: How deep objects and arrays may nest in a JSON body (ours nest two or three levels).
MAX_JSON_DEPTH = 32
#: The most digits a JSON integer may have (Python refuses more than 4,300 with a ValueError).
MAX_INTEGER_DIGITS = 100
#: Control characters (C0, DEL, C1) a string must not hold; tab, newline and CR may appear in
#: JSON strings (free text such as a note), never in a path or query parameter.
_JSON_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_URL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

View = TypeVar("View", bound=Callable[..., Any])


def raw_body(view: View) -> View:
    """Mark a view whose request body is a file of any Content-Type (JSON included): the
    edge leaves its body alone, the view streams it."""
    view.edge_raw_body = True  # type: ignore[attr-defined]
    return view


#: What the edge keeps in ``app.extensions``: (rule, method) -> declared body media types.
_BODY_TYPES = "voxhook.edge.body_types"
#: A Flask rule's ``<converter:name>`` as OpenAPI's ``{name}``.
_RULE_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def register_edge_checks(app: Flask, document: Mapping[str, Any]) -> None:
    """Run :func:`check_request` before every view (before authentication too: a hostile
    body is refused without a database lookup); ``document`` is the OpenAPI document, whose
    request bodies say which Content-Types each operation reads."""
    app.extensions[_BODY_TYPES] = {
        (path, method.upper()): tuple(operation["requestBody"].get("content", {}))
        for path, operations in document.get("paths", {}).items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation}
    app.before_request(check_request)


def check_request() -> None:
    for name, value in (request.view_args or {}).items():
        _check_text(name, value, _URL_FORBIDDEN, "path parameter")
    for name, values in request.args.lists():
        _check_text(name, name, _URL_FORBIDDEN, "query parameter name")
        for value in values:
            _check_text(name, value, _URL_FORBIDDEN, "query parameter")
    _check_content_type()
    if _is_json(request.mimetype) and not _takes_raw_body():
        _check_json_body()


def _check_content_type() -> None:
    """A body of a type the operation does not declare is a 415 that lists those it does."""
    if request.url_rule is None or not _has_body():
        return
    path = _RULE_PARAMETER.sub(r"{\1}", request.url_rule.rule)
    declared = current_app.extensions[_BODY_TYPES].get((path, request.method))
    if not declared:
        return  # no body documented: whatever comes is not read
    mimetype = request.mimetype or "application/octet-stream"
    if _is_json(mimetype):
        mimetype = "application/json"  # application/merge-patch+json and the like
    if any(fnmatchcase(mimetype, pattern) for pattern in declared):
        return
    message = (f"This operation does not read a body of Content-Type "
               f"'{request.mimetype or '(none)'}'; send one of: {', '.join(declared)}.")
    raise UnsupportedMediaType(message, fields={"Content-Type": [message]})


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def describe_character(character: str) -> str:
    """``U+0000`` and a name a person recognises."""
    names = {"\x00": "NUL", "\t": "tab", "\n": "newline", "\r": "carriage return",
             "\x7f": "DEL"}
    code = f"U+{ord(character):04X}"
    if "\ud800" <= character <= "\udfff":
        return f"{code} (an unpaired surrogate, which no UTF-8 text can hold)"
    return f"{code} ({names.get(character, 'a control character')})"


def _check_text(field: str, value: Any, forbidden: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str):
        return
    found = forbidden.search(value)
    if found:
        message = f"The {what} contains {describe_character(found.group())}: remove it."
        raise ValidationFailed(f"The request is invalid. {field}: {message}",
                               fields={field: [message]})


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def _takes_raw_body() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "edge_raw_body", False))


def _check_json_body() -> None:
    request.max_content_length = MAX_JSON_BYTES
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise BodyTooLarge(MAX_JSON_BYTES) from None
    if not data:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"it is not UTF-8 (byte {exc.start} is 0x{data[exc.start]:02x}); "
                       "send JSON encoded as UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise _invalid(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # from the parse_* hooks
        raise _invalid(str(exc)) from None
    for path, depth, value in _walk(document):
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, str):
            _check_text(path or "body", value, _JSON_FORBIDDEN, "JSON string")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a number, or null")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(digits)


def _walk(document: Any) -> Iterator[tuple[str, int, Any]]:
    """Every value (and every object key, as a string at its object's path) with its dotted
    path and depth; iterative, so no depth overflows Python's stack."""
    stack: list[tuple[str, int, Any]] = [("", 0, document)]
    while stack:
        path, depth, value = stack.pop()
        yield path, depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                yield path, depth + 1, key
                stack.append((child, depth + 1, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), depth + 1, item)
                         for index, item in enumerate(value))


def _invalid(reason: str) -> InvalidJson:
    message = f"The request body is not valid JSON: {reason}."
    return InvalidJson(message, fields={"body": [message]})


def _too_deep() -> InvalidJson:
    message = (f"The request body nests objects or arrays more than {MAX_JSON_DEPTH} levels "
               "deep; send the fields this operation documents.")
    return InvalidJson(message, fields={"body": [message]})
