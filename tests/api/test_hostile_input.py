"""Crafted input never reaches a 500: every hostile body, URL, parameter, header and encoding
is a 4xx in the one error shape that names what is wrong, on SQLite and PostgreSQL alike.

The application rows use the real app through Flask's test client (the ``client`` fixture is
parametrized over both databases: a NUL stored by SQLite is a DataError on PostgreSQL). The
rows that only gunicorn sees (a request line or headers over its limits, malformed HTTP) are
sent over a raw socket to the real gunicorn of a running stack.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from app.api.edge import MAX_JSON_BYTES, MAX_JSON_DEPTH
from app.ops.api_process import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE

V1 = "/api/v1/transcriptions"
QUICKSTART = "/transcribe"
KEYS = "/api/v1/keys"
ENDPOINTS = "/api/v1/webhook_endpoints"
OK_URL = "http://127.0.0.1:9/audio.mp3"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_extra(prefix: str, extra: str) -> str:
    """A JSON object ``{prefix, "x": extra}`` written by hand (extra is raw JSON text)."""
    return "{" + prefix + ', "x": ' + extra + "}"


# (path, raw body, content type, status, code, field named)
BODIES = [
    (QUICKSTART, with_extra(f'"url": "{OK_URL}"', nested(1000)), "application/json",
     400, "invalid_json", "body"),
    (V1, with_extra(f'"source": "external_url", "url": "{OK_URL}"', nested(MAX_JSON_DEPTH + 1)),
     "application/json", 400, "invalid_json", "body"),
    (KEYS, '{"name": NaN}', "application/json", 400, "invalid_json", "body"),
    (KEYS, '{"name": Infinity}', "application/json", 400, "invalid_json", "body"),
    (KEYS, '{"name": "x", "n": 1' + "0" * 5000 + "}", "application/json", 400,
     "invalid_json", "body"),
    (KEYS, b'{"name": "caf\xe9"}', "application/json", 400, "invalid_json", "body"),
    (KEYS, '{"name": "utf-16"}'.encode("utf-16"), "application/json", 400, "invalid_json",
     "body"),
    (KEYS, '{"name": "x"' + " " * MAX_JSON_BYTES + "}", "application/json", 413,
     "body_too_large", "body"),
    (KEYS, '{"name": "a\\u0000b"}', "application/json", 422, "validation_error", "name"),
    (KEYS, '{"name": "line\\nbreak"}', "application/json", 422, "validation_error", "name"),
    (KEYS, '{"name": "\\ud800"}', "application/json", 422, "validation_error", "name"),
    (KEYS, '{"\\ud800": "x", "name": "x"}', "application/json", 422, "validation_error",
     "body"),
    (KEYS, '{"name": "x"}', "text/plain", 415, "unsupported_media_type", "Content-Type"),
    (ENDPOINTS, '{"url": "https://example.com/h", "events": ["transcription.completed\\u0000"]}',
     "application/json", 422, "validation_error", "events.0"),
    (ENDPOINTS, '{"url": "https://example.com/h", "description": "a\\u0007b"}',
     "application/json", 422, "validation_error", "description"),
    (V1, json.dumps({"source": "external_url", "url": OK_URL, "diarize": True,
                     "speaker_count": 2.5}), "application/json", 422, "validation_error",
     "speaker_count"),
    (V1, json.dumps({"source": "external_url", "url": OK_URL, "diarize": True,
                     "speaker_count": 10 ** 30}), "application/json", 422,
     "validation_error", "speaker_count"),
    (V1, json.dumps({"source": "external_url", "url": OK_URL, "pipeline_code": "a\x00"}),
     "application/json", 422, "validation_error", "pipeline_code"),
    (V1, json.dumps({"source": "upload", "upload_id": "up_\x00"}), "application/json", 422,
     "validation_error", "upload_id"),
]

#: URLs no parser may read two ways, or that cannot be fetched: refused when given.
HOSTILE_URLS = [
    "http://[::1/a.mp3",                    # unclosed IPv6 bracket
    "http://[zz::1]/a.mp3",                 # not an IPv6 address
    "http://a.example.com\uff03@b.example/x",  # fullwidth '#' becomes '#' under NFKC
    "http://a.example.com\\@b.example/x",   # WHATWG reads '\' as '/', Python does not
    "http://user:secret@a.example.com/x",   # credentials: ambiguous, never sent
    "http://b\u00fccher.example/a.mp3",      # non-ASCII host: IDNA (xn--) form wanted
    "http://%61.example/a.mp3",             # percent-encoded host
    "http://a.example.com/\ud800",          # lone surrogate: no UTF-8 exists
    "http://a.example.com/\x00.mp3",        # NUL
    "http://a.example.com/b c.mp3",         # space
    "http://a.example.com:99999/a.mp3",     # port out of range
    "http://a.example.com:0/a.mp3",
    "http://a.example.com:8o/a.mp3",
    "http:///a.mp3",                        # no host
    "http://exa*mple.com/a.mp3",
    "ftp://a.example.com/a.mp3",
    "//a.example.com/a.mp3",
    "http://a.example.com/" + "a" * 4100,
]


def _post(client, path: str, body: Any, auth: dict[str, str], content_type: str,
          **headers: str):
    return client.post(path, data=body, content_type=content_type,
                       headers={**auth, **headers})


def _assert_refused(response, status: int, code: str, field: str) -> None:
    assert response.status_code == status, response.get_data()[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert field in error.get("fields", {}), error
    assert error["message"]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "code", "field"), BODIES)
def test_hostile_bodies_are_refused_naming_the_field(client, auth, path, body, content_type,
                                                    status, code, field):
    _assert_refused(_post(client, path, body, auth, content_type), status, code, field)


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=ascii)
@pytest.mark.parametrize(("path", "field", "base"), [
    (QUICKSTART, "url", {}),
    (V1, "url", {"source": "external_url"}),
    (QUICKSTART, "webhook_url", {"url": OK_URL}),
    (ENDPOINTS, "url", {}),
])
def test_hostile_urls_are_refused_when_given(client, auth, url, path, field, base):
    body = json.dumps({**base, field: url})
    _assert_refused(_post(client, path, body, auth, "application/json"), 422,
                    "validation_error", field)


def test_nothing_hostile_was_stored(client, auth):
    """After refusals, the account has no transcription and only its own key."""
    for url in HOSTILE_URLS:
        _post(client, QUICKSTART, json.dumps({"url": url}), auth, "application/json")
    _post(client, KEYS, '{"name": "a\\u0000b"}', auth, "application/json")
    assert client.get(V1, headers=auth).get_json()["data"] == []
    assert [key["name"] for key in client.get(KEYS, headers=auth).get_json()["data"]] == [
        "tests"]


def test_a_url_with_a_non_ascii_path_is_accepted(client, auth):
    """Non-ASCII belongs in a path (the fetcher percent-encodes it); only the authority must
    be ASCII."""
    response = _post(client, QUICKSTART, json.dumps({"url": "http://127.0.0.1:9/café.mp3"}),
                     auth, "application/json")
    assert response.status_code == 200, response.get_json()


# (method, path and query, status, field)
PARAMETERS = [
    ("GET", f"{V1}/%00", 422, "transcription_id"),
    ("GET", f"{V1}/tr_%01x/export?format=srt", 422, "transcription_id"),
    ("POST", f"{V1}/%00/cancel", 422, "transcription_id"),
    ("DELETE", f"{ENDPOINTS}/we_%00", 422, "endpoint_id"),
    ("GET", f"{V1}?starting_after=%00", 422, "starting_after"),
    ("GET", f"{V1}?limit=1e3", 422, "limit"),
    ("GET", f"{V1}?limit=1.5", 422, "limit"),
    ("GET", f"{V1}?limit=99999999999999999999999999", 422, "limit"),
    ("GET", f"{V1}?include_result=maybe", 422, "include_result"),
    ("GET", f"{V1}?created_after=%ff%fe", 422, "created_after"),
    ("GET", f"{V1}?status=queued%00", 422, "status"),
    ("GET", f"{V1}?surprise=1", 422, "surprise"),
    ("GET", "/api/v1/usage?start=2026-13-01", 422, "start"),
    ("GET", f"{QUICKSTART}/tr_x/export?format=%00", 422, "format"),
    ("POST", f"{QUICKSTART}?diarize=", 422, "diarize"),
]


@pytest.mark.parametrize(("method", "target", "status", "field"), PARAMETERS)
def test_hostile_parameters_are_refused_naming_them(client, auth, method, target, status,
                                                    field):
    extra = {"data": b"RIFF", "content_type": "audio/wav"} if method == "POST" else {}
    response = client.open(target, method=method, headers=auth, **extra)
    _assert_refused(response, status, "validation_error", field)


@pytest.mark.parametrize("idempotency_key", ["k" * 256, "caf\u00e9", "tab\there", " "])
def test_a_hostile_idempotency_key_is_refused(client, auth, idempotency_key):
    response = _post(client, QUICKSTART, json.dumps({"url": OK_URL}), auth,
                     "application/json", **{"Idempotency-Key": idempotency_key})
    _assert_refused(response, 422, "validation_error", "Idempotency-Key")


# --------------------------------------------------------------------------- real gunicorn


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (gunicorn closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in
               (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


_LONG_LINE = b"GET /healthz?q=" + b"a" * LIMIT_REQUEST_LINE + b" HTTP/1.1\r\nHost: x\r\n\r\n"
_BIG_HEADER = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
               + b"a" * (LIMIT_REQUEST_FIELD_SIZE + 10) + b"\r\n\r\n")
_MANY_HEADERS = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                 + b"".join(b"X-H%d: 1\r\n" % n for n in range(LIMIT_REQUEST_FIELDS + 1))
                 + b"\r\n")
GUNICORN_ROWS = [
    ("request line over the limit", _LONG_LINE, 414, "request_uri_too_long"),
    ("one header over the limit", _BIG_HEADER, 431, "request_header_fields_too_large"),
    ("too many headers", _MANY_HEADERS, 431, "request_header_fields_too_large"),
    ("a header name with a space", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
     400, "bad_request"),
    ("a NUL in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
     400, "bad_request"),
    ("a bad chunk size", b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     400, "bad_request"),
    ("not HTTP at all", b"HELLO\r\n\r\n", 400, "bad_request"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("what", "request_bytes", "status", "code"), GUNICORN_ROWS,
                         ids=[row[0] for row in GUNICORN_ROWS])
def test_gunicorn_refusals_are_json_errors(single_process_api_port, what, request_bytes, status,
                                           code):
    answer_status, headers, body = _exchange(single_process_api_port, request_bytes)
    assert answer_status == status, body[:300]
    assert headers["content-type"] == "application/json", (headers, body[:300])
    error = json.loads(body)["error"]
    assert error["code"] == code, error
    assert error["message"]
    assert int(headers["content-length"]) == len(body)


@pytest.mark.e2e
def test_gunicorn_still_serves_what_fits(single_process_api_port):
    """Just under the limits, the request reaches the application."""
    line = b"GET /healthz?q=" + b"a" * (LIMIT_REQUEST_LINE - 40) + b" HTTP/1.1\r\n"
    status, _, body = _exchange(single_process_api_port,
                                line + b"Host: x\r\nConnection: close\r\n\r\n")
    assert status == 200, body[:300]
