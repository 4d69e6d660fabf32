"""Direct uploads through the API (Flask's test client on the real app, real Redis and
SQLite/PostgreSQL): signed upload URLs and what they refuse, transcriptions of uploads, and
one-request uploads (multipart and raw body) on both surfaces.

The same flows through gunicorn, with a worker, and the memory bound: test_e2e_uploads.py.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from redis import Redis
from rq import Queue

from app import create_app
from app.config import Settings, UploadSettings
from app.media.signing import UPLOAD, sign, signing_key
from app.media.uploads import internal_download_url
from app.store.db import Database
from app.store.models import Transcription, Upload
from tests.support.paths import FIXTURES

FIXTURES = FIXTURES
AUDIO = (FIXTURES / "jfk.flac").read_bytes()
AUDIO_SHA256 = hashlib.sha256(AUDIO).hexdigest()
#: The upload limit of these tests: 2 MB (jfk.flac is 1.1 MB).
MAX_BYTES = 2 * 1024 * 1024
V1 = "/api/v1/transcriptions"
QUICKSTART = "/transcribe"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with a 2 MB upload limit."""
    return settings.with_overrides(uploads=UploadSettings(max_bytes=MAX_BYTES))


def new_upload(client, auth, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/uploads", json=body, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def relative(url: str) -> str:
    """The path and query of an absolute upload URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def put(client, url: str, data: bytes | io.IOBase = AUDIO, **kwargs: Any):
    return client.put(relative(url), data=data, content_type="audio/flac", **kwargs)


def uploaded(client, auth) -> dict[str, Any]:
    upload = new_upload(client, auth, filename="jfk.flac")
    assert put(client, upload["upload_url"]).status_code == 200
    return upload


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def error_of(response) -> dict[str, Any]:
    return response.get_json()["error"]


def row(database: Database, model: type, key: str):
    with database.session() as session:
        return session.get(model, key)


# --------------------------------------------------------------------------- signed URL flow


def test_upload_then_transcribe(client, auth, settings, database):
    upload = new_upload(client, auth, filename="jfk.flac", content_type="audio/flac")
    assert upload["id"].startswith("up_") and upload["object"] == "upload"
    assert upload["status"] == "pending" and upload["method"] == "PUT"
    assert upload["max_bytes"] == MAX_BYTES
    url = urlsplit(upload["upload_url"])
    assert url.scheme == "http" and url.netloc == "localhost"  # the request's host
    assert url.path == f"/api/v1/uploads/{upload['id']}/content"
    expires = int(parse_qs(url.query)["expires"][0])
    assert abs(expires - (time.time() + settings.uploads.url_ttl_s)) < 5

    received = put(client, upload["upload_url"])  # no API key: the URL is the permission
    assert received.status_code == 200, received.get_json()
    body = received.get_json()
    assert body["status"] == "uploaded" and body["size_bytes"] == len(AUDIO)
    assert body["sha256"] == AUDIO_SHA256 and body["content_type"] == "audio/flac"
    assert body["delete_after"] is not None
    assert client.get(f"/api/v1/uploads/{upload['id']}", headers=auth).get_json() == body
    key = row(database, Upload, upload["id"]).storage_key
    assert (settings.data_dir / "media" / "store" / key).read_bytes() == AUDIO

    created = client.post(V1, json={"source": "upload", "upload_id": upload["id"],
                                    "language": "en"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    transcription = created.get_json()
    assert transcription["source"] == "upload" and transcription["url"] is None
    assert transcription["upload_id"] == upload["id"]
    polled = client.get(f"{V1}/{transcription['id']}", headers=auth).get_json()
    assert polled["source"] == "upload" and polled["upload_id"] == upload["id"]
    queue = Queue(settings.queue_name, connection=Redis.from_url(settings.redis_url))
    assert transcription["id"] in queue.job_ids
    used = client.get(f"/api/v1/uploads/{upload['id']}", headers=auth).get_json()
    assert used["status"] == "used" and used["transcription_id"] == transcription["id"]


def test_quickstart_takes_an_upload_id(client, auth, database):
    upload = uploaded(client, auth)
    created = client.post(QUICKSTART, json={"upload_id": upload["id"]}, headers=auth)
    assert created.status_code == 200, created.get_json()
    transcription = row(database, Transcription, created.get_json()["id"])
    assert (transcription.source, transcription.upload_id) == ("upload", upload["id"])


def test_the_public_url_is_the_base_of_upload_urls(auth, settings, database):
    public = create_app(settings.with_overrides(public_url="https://voice.example.com/"))
    upload = new_upload(public.test_client(), auth)
    assert upload["upload_url"].startswith(
        f"https://voice.example.com/api/v1/uploads/{upload['id']}/content?expires=")


def test_the_upload_body_is_optional(client, auth):
    response = client.post("/api/v1/uploads", headers=auth)
    assert response.status_code == 201
    assert response.get_json()["filename"] is None
    bad = client.post("/api/v1/uploads", json={"filename": 5}, headers=auth)
    assert bad.status_code == 422 and "filename" in error_of(bad)["fields"]


def test_uploads_need_a_key_and_belong_to_their_account(client, auth, other_auth):
    assert client.post("/api/v1/uploads").status_code == 401
    upload = new_upload(client, auth)
    assert client.get(f"/api/v1/uploads/{upload['id']}").status_code == 401
    hidden = client.get(f"/api/v1/uploads/{upload['id']}", headers=other_auth)
    assert hidden.status_code == 404 and error_of(hidden)["code"] == "not_found"


# --------------------------------------------------------------------------- refused PUTs


def _signed_url(upload_id: str, expires: int, signature: str) -> str:
    return f"/api/v1/uploads/{upload_id}/content?expires={expires}&signature={signature}"


def test_an_expired_url_is_refused(client, auth, settings):
    upload = new_upload(client, auth)
    past = int(time.time()) - 1
    url = _signed_url(upload["id"], past, sign(signing_key(settings), UPLOAD, upload["id"],
                                                past))
    response = put(client, url)
    assert response.status_code == 403
    assert error_of(response)["code"] == "upload_url_expired"
    assert "POST /api/v1/uploads" in error_of(response)["message"]


def test_a_short_url_lifetime_expires(auth, settings, database):
    client = create_app(settings.with_overrides(
        uploads=UploadSettings(max_bytes=MAX_BYTES, url_ttl_s=1))).test_client()
    upload = new_upload(client, auth)
    time.sleep(2.1)
    response = put(client, upload["upload_url"])
    assert (response.status_code, error_of(response)["code"]) == (403, "upload_url_expired")
    assert client.get(f"/api/v1/uploads/{upload['id']}",
                      headers=auth).get_json()["status"] == "expired"


def test_tampered_and_borrowed_signatures_are_refused(client, auth, settings):
    first, second = new_upload(client, auth), new_upload(client, auth)
    query = parse_qs(urlsplit(first["upload_url"]).query)
    expires, signature = query["expires"][0], query["signature"][0]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    for url in (_signed_url(first["id"], int(expires), flipped),            # tampered
                _signed_url(first["id"], int(expires) + 3600, signature),   # stretched
                _signed_url(second["id"], int(expires), signature),         # borrowed
                f"/api/v1/uploads/{first['id']}/content"):                  # unsigned
        response = put(client, url)
        assert response.status_code == 403, url
        assert error_of(response)["code"] == "upload_url_invalid"
    assert stored_files(settings) == []
    assert client.get(f"/api/v1/uploads/{first['id']}",
                      headers=auth).get_json()["status"] == "pending"


class Unreadable(io.RawIOBase):
    """A body that fails the test if the server reads it."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the test client looks for the start; it stays untouched

    def readinto(self, buffer) -> int:
        raise AssertionError("the body was read although Content-Length was over the limit")


def test_a_declared_size_over_the_limit_is_refused_unread(client, auth, settings):
    upload = new_upload(client, auth)
    response = client.put(relative(upload["upload_url"]), input_stream=Unreadable(),
                          headers={"Content-Type": "audio/flac"},
                          environ_overrides={"CONTENT_LENGTH": str(MAX_BYTES + 1)})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "file_too_large" and error["max_bytes"] == MAX_BYTES
    assert "VOXHOOK_MAX_UPLOAD_MB" in error["message"]
    assert stored_files(settings) == []


def test_a_stream_passing_the_limit_is_cut_off_and_nothing_kept(client, auth, settings):
    """No Content-Length (chunked): the limit is enforced while streaming."""
    upload = new_upload(client, auth)
    response = client.put(relative(upload["upload_url"]),
                          input_stream=io.BytesIO(b"\0" * (MAX_BYTES + 1)),
                          headers={"Content-Type": "audio/flac"},
                          environ_overrides={"wsgi.input_terminated": True})
    assert (response.status_code, error_of(response)["code"]) == (413, "file_too_large")
    assert stored_files(settings) == []
    # Nothing happened to the upload: the same URL takes a file within the limit.
    exact = client.put(relative(upload["upload_url"]), input_stream=io.BytesIO(b"\1" * MAX_BYTES),
                       headers={"Content-Type": "audio/flac"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert exact.status_code == 200 and exact.get_json()["size_bytes"] == MAX_BYTES


def test_a_second_put_is_refused(client, auth):
    upload = uploaded(client, auth)
    again = put(client, upload["upload_url"], data=b"other bytes")
    assert again.status_code == 409
    assert error_of(again)["code"] == "upload_already_received"
    state = client.get(f"/api/v1/uploads/{upload['id']}", headers=auth).get_json()
    assert state["sha256"] == AUDIO_SHA256


def test_an_empty_put_is_refused_and_the_url_still_works(client, auth, settings):
    upload = new_upload(client, auth)
    empty = put(client, upload["upload_url"], data=b"")
    assert empty.status_code == 422 and "file" in error_of(empty)["fields"]
    assert stored_files(settings) == []
    assert put(client, upload["upload_url"]).status_code == 200


# --------------------------------------------------------------------------- transcriptions


def test_another_accounts_upload_is_answered_like_an_unknown_one(client, auth, other_auth):
    upload = uploaded(client, auth)
    theirs = client.post(V1, json={"source": "upload", "upload_id": upload["id"]},
                         headers=other_auth)
    unknown = client.post(V1, json={"source": "upload", "upload_id": "up_0123456789abcdef"},
                          headers=other_auth)
    for response in (theirs, unknown):
        assert response.status_code == 422
        message = error_of(response)["fields"]["upload_id"][0]
        assert message.startswith("No upload") and "POST /api/v1/uploads" in message
    # Untouched: its owner can still use it.
    mine = client.post(V1, json={"source": "upload", "upload_id": upload["id"]}, headers=auth)
    assert mine.status_code == 201


def test_a_pending_upload_cannot_be_transcribed_yet(client, auth):
    upload = new_upload(client, auth)
    response = client.post(V1, json={"source": "upload", "upload_id": upload["id"]},
                           headers=auth)
    assert response.status_code == 422
    assert "PUT the file" in error_of(response)["fields"]["upload_id"][0]


def test_an_upload_serves_one_transcription(client, auth, database):
    upload = uploaded(client, auth)
    body = {"source": "upload", "upload_id": upload["id"]}
    first = client.post(V1, json=body, headers=auth)
    second = client.post(V1, json=body, headers=auth)
    quickstart = client.post(QUICKSTART, json={"upload_id": upload["id"]}, headers=auth)
    assert first.status_code == 201
    for response in (second, quickstart):
        assert response.status_code == 422
        message = error_of(response)["fields"]["upload_id"][0]
        assert first.get_json()["id"] in message and "create a new upload" in message.lower()
    with database.session() as session:
        assert session.query(Transcription).filter_by(upload_id=upload["id"]).count() == 1


def test_an_idempotent_replay_survives_the_used_upload(client, auth):
    upload = uploaded(client, auth)
    body = {"source": "upload", "upload_id": upload["id"]}
    headers = {**auth, "Idempotency-Key": "upload-retry-1"}
    first = client.post(V1, json=body, headers=headers)
    again = client.post(V1, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()


@pytest.mark.parametrize(("body", "field"), [
    ({"source": "upload"}, "upload_id"),
    ({"source": "upload", "upload_id": "up_abc", "url": "http://127.0.0.1:9/a.mp3"}, "url"),
    ({"source": "external_url", "url": "http://127.0.0.1:9/a.mp3", "upload_id": "up_abc"},
     "upload_id"),
    ({"source": "upload", "upload_id": "../../etc/passwd"}, "upload_id"),
    ({"source": "upload", "upload_id": 12}, "upload_id"),
    ({"source": "s3", "upload_id": "up_abc"}, "source"),
])
def test_v1_source_fields_are_checked_by_name(client, auth, body, field):
    response = client.post(V1, json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    assert field in error_of(response)["fields"], error_of(response)


def test_quickstart_wants_url_or_upload_id_not_both(client, auth):
    both = client.post(QUICKSTART, json={"url": "http://127.0.0.1:9/a.mp3",
                                         "upload_id": "up_abc"}, headers=auth)
    assert both.status_code == 422
    assert set(error_of(both)["fields"]) == {"url", "upload_id"}


# --------------------------------------------------------------------------- one request


def multipart(client, path: str, auth, fields: dict[str, str] | None = None,
              data: bytes = AUDIO, name: str = "file", filename: str = "jfk.flac", **kwargs):
    form: dict[str, Any] = dict(fields or {})
    form[name] = (io.BytesIO(data), filename, "audio/flac")
    return client.post(path, data=form, content_type="multipart/form-data", headers=auth,
                       **kwargs)


def raw(client, path: str, auth, query: str = "", data: bytes = AUDIO, **headers: str):
    return client.post(f"{path}?{query}" if query else path, data=data,
                       headers={**auth, "Content-Type": "audio/flac", **headers})


def the_upload_of(database: Database, transcription_id: str) -> Upload:
    transcription = row(database, Transcription, transcription_id)
    assert transcription.source == "upload" and transcription.url is None
    return row(database, Upload, transcription.upload_id)


@pytest.mark.parametrize("path", [V1, QUICKSTART])
@pytest.mark.parametrize("kind", ["multipart", "raw"])
def test_one_request_upload_on_both_surfaces(client, auth, settings, database, path, kind):
    fields = {"language": "en", "align": "false", "diarize": "false"}
    if kind == "multipart":
        response = multipart(client, path, auth, fields)
    else:
        response = raw(client, path, auth, "language=en&align=false&diarize=false",
                       **{"Content-Disposition": 'attachment; filename="jfk.flac"'})
    assert response.status_code == (201 if path == V1 else 200), response.get_json()
    transcription_id = response.get_json()["id"]
    upload = the_upload_of(database, transcription_id)
    assert (upload.status, upload.transcription_id) == ("used", transcription_id)
    assert (upload.filename, upload.content_type) == ("jfk.flac", "audio/flac")
    assert (upload.size_bytes, upload.sha256) == (len(AUDIO), AUDIO_SHA256)
    stored = settings.data_dir / "media" / "store" / upload.storage_key
    assert stored.read_bytes() == AUDIO
    transcription = row(database, Transcription, transcription_id)
    assert (transcription.language, transcription.align) == ("en", False)
    # The account can see the upload it made this way.
    assert client.get(f"/api/v1/uploads/{upload.id}", headers=auth).status_code == 200
    assert not [p for p in stored_files(settings) if "incoming" in p.parts]


def test_multipart_without_a_file_reads_like_json(client, auth, database):
    response = client.post(QUICKSTART, data={"url": "http://127.0.0.1:9/a.mp3",
                                             "align": "false"},
                           content_type="multipart/form-data", headers=auth)
    assert response.status_code == 200, response.get_json()
    transcription = row(database, Transcription, response.get_json()["id"])
    assert (transcription.source, transcription.align) == ("external_url", False)
    urlencoded = client.post(V1, data={"source": "external_url",
                                       "url": "http://127.0.0.1:9/a.mp3"}, headers=auth)
    assert urlencoded.status_code == 201, urlencoded.get_json()


@pytest.mark.parametrize(("path", "fields", "field"), [
    (V1, {"diarize": "maybe"}, "diarize"),
    (QUICKSTART, {"diarize": "maybe"}, "diarize"),
    (V1, {"speaker_count": "two", "diarize": "true"}, "speaker_count"),
    (V1, {"url": "http://127.0.0.1:9/a.mp3"}, "url"),
    (QUICKSTART, {"url": "http://127.0.0.1:9/a.mp3"}, "url"),
    (V1, {"upload_id": "up_abc"}, "upload_id"),
    (V1, {"source": "external_url"}, "source"),
    (V1, {"language": "english"}, "language"),
    (V1, {"surprise": "1"}, "surprise"),
    (V1, {"pipeline_code": "no-such-pipeline"}, "pipeline_code"),
    (V1, {"min_speakers": "2"}, "min_speakers"),  # converted, then: needs diarize
])
@pytest.mark.parametrize("kind", ["multipart", "raw"])
def test_one_request_fields_meet_the_json_rules(client, auth, settings, path, fields, field,
                                                kind):
    if kind == "multipart":
        response = multipart(client, path, auth, fields)
    else:
        query = "&".join(f"{name}={value}" for name, value in fields.items())
        response = raw(client, path, auth, query)
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_error" and field in error["fields"], error
    assert field in error["message"]
    assert stored_files(settings) == []  # refused before anything was stored


def test_booleans_and_integers_are_converted_only_from_strings(client, auth, database):
    response = raw(client, V1, auth, "diarize=FALSE&align=true&language=auto")
    assert response.status_code == 201, response.get_json()
    twice = raw(client, V1, auth, "language=en&language=de")
    assert twice.status_code == 422 and "language" in error_of(twice)["fields"]
    as_json = client.post(V1, json={"source": "external_url", "url": "http://127.0.0.1:9/a",
                                    "align": "false"}, headers=auth)
    assert as_json.status_code == 422 and "align" in error_of(as_json)["fields"]


@pytest.mark.parametrize("path", [V1, QUICKSTART])
def test_an_empty_file_is_refused_by_name(client, auth, settings, path):
    for response in (multipart(client, path, auth, data=b""), raw(client, path, auth, data=b"")):
        assert response.status_code == 422, response.get_json()
        assert "file" in error_of(response)["fields"]
    assert stored_files(settings) == []


@pytest.mark.parametrize("path", [V1, QUICKSTART])
def test_a_file_over_the_limit_is_refused(client, auth, settings, path):
    big = b"\0" * (MAX_BYTES + 1)
    for response in (multipart(client, path, auth, data=big), raw(client, path, auth, data=big)):
        assert response.status_code == 413, response.get_json()
        assert error_of(response)["code"] == "file_too_large"
    assert stored_files(settings) == []


def test_file_parts_are_checked(client, auth):
    wrong_name = multipart(client, V1, auth, name="audio")
    assert wrong_name.status_code == 422 and "audio" in error_of(wrong_name)["fields"]
    as_text = client.post(V1, data={"file": "not a file part"},
                          content_type="multipart/form-data", headers=auth)
    assert as_text.status_code == 422 and "file" in error_of(as_text)["fields"]


def test_one_request_idempotency_replays_and_keeps_no_second_file(client, auth, database,
                                                                  settings):
    headers = {**auth, "Idempotency-Key": "n8n-run-7"}
    first = multipart(client, V1, headers, {"language": "en"})
    again = multipart(client, V1, headers, {"language": "en"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    other_file = multipart(client, V1, headers, {"language": "en"}, data=AUDIO[:-1])
    assert other_file.status_code == 422
    assert error_of(other_file)["code"] == "idempotency_key_reused"
    with database.session() as session:
        statuses = sorted(u.status for u in session.query(Upload))
    assert statuses == ["deleted", "deleted", "used"]
    assert len([p for p in stored_files(settings) if "store" in p.parts]) == 1


# --------------------------------------------------------------------------- workers, clean-up


def test_internal_download_serves_the_file_to_signed_urls_only(client, auth, settings, app):
    upload = uploaded(client, auth)
    url = internal_download_url(settings, "http://api.internal:8000", upload["id"])
    assert url.startswith(f"http://api.internal:8000/internal/media/{upload['id']}?expires=")
    response = client.get(relative(url))
    assert response.status_code == 200 and response.data == AUDIO
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(AUDIO))

    expired = internal_download_url(settings, "http://x", upload["id"], now=time.time() - 3600)
    assert error_of(client.get(relative(expired)))["code"] == "download_url_expired"
    # An upload URL's signature is no download permission, nor is another upload's.
    assert error_of(client.get(relative(upload["upload_url"]).replace(
        "/api/v1/uploads/", "/internal/media/").replace("/content", "")))["code"] \
        == "download_url_invalid"
    other = uploaded(client, auth)
    borrowed = relative(url).replace(upload["id"], other["id"])
    assert client.get(borrowed).status_code == 403

    app.extensions["voxhook"].uploads.discard(upload["id"])
    gone = client.get(relative(url))
    assert (gone.status_code, error_of(gone)["code"]) == (410, "upload_gone")


def test_sweep_deletes_unused_files_and_expires_pending_uploads(client, auth, app, database,
                                                                settings):
    from datetime import timedelta

    from app.media.sweep import sweep_media
    from app.store.models import utcnow

    unused, used, pending = uploaded(client, auth), uploaded(client, auth), new_upload(client,
                                                                                       auth)
    assert client.post(V1, json={"source": "upload", "upload_id": used["id"]},
                       headers=auth).status_code == 201
    storage = app.extensions["voxhook"].storage
    assert sweep_media(settings, database, storage).unused_uploads == 0  # nothing due yet
    later = utcnow() + timedelta(seconds=settings.uploads.unused_ttl_s + 1)
    assert sweep_media(settings, database, storage, now=later).unused_uploads == 1
    states = {u["id"]: client.get(f"/api/v1/uploads/{u['id']}", headers=auth).get_json()
              ["status"] for u in (unused, used, pending)}
    assert states == {unused["id"]: "deleted", used["id"]: "used", pending["id"]: "expired"}
    assert row(database, Upload, pending["id"]).status == "expired"
    assert len([p for p in stored_files(settings) if "store" in p.parts]) == 1
    late = client.post(V1, json={"source": "upload", "upload_id": unused["id"]}, headers=auth)
    assert late.status_code == 422 and "no longer stored" in error_of(late)["message"]


def test_openapi_describes_uploads_and_the_kinds_of_body(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    put_op = paths["/api/v1/uploads/{upload_id}/content"]["put"]
    assert put_op["security"] == []
    assert {"application/octet-stream", "audio/*"} <= set(put_op["requestBody"]["content"])
    assert {"403", "409", "413"} <= set(put_op["responses"])
    assert "/api/v1/uploads" in paths and "/api/v1/uploads/{upload_id}" in paths
    assert paths["/internal/media/{upload_id}"]["get"]["security"] == []
    for path in ("/api/v1/transcriptions", "/transcribe"):
        operation = paths[path]["post"]
        content = operation["requestBody"]["content"]
        assert {"application/json", "multipart/form-data", "audio/*", "video/*",
                "application/octet-stream"} <= set(content), path
        form = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
        form_schema = spec["components"]["schemas"][form]
        assert form_schema["properties"]["file"]["format"] == "binary"
        assert "file" in form_schema["required"] and "diarize" in form_schema["properties"]
        assert "multipart/form-data" in operation["description"]
        assert "413" in operation["responses"]
        assert {"diarize", "language"} <= {p["name"] for p in operation["parameters"]}
    schemas = spec["components"]["schemas"]
    assert "upload_id" in schemas["V1Create"]["properties"]
    assert "upload_url" in schemas["UploadCreated"]["properties"]
