"""Direct uploads through the real service: gunicorn, Redis, SQLite and PostgreSQL, a worker.

- the signed URL flow and one-request uploads over HTTP, and the transcriptions they make;
- refusals as gunicorn serves them (a declared size over the limit is answered before the
  body is sent; a chunked body is cut off at the limit);
- the memory bound: a 200 MB upload raises the API worker process's memory by < 50 MB.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from app.config import Settings
from app.media.signing import UPLOAD, sign, signing_key
from app.ops.embedded_redis import EmbeddedRedis
from tests.support.memory import MB, MultipartBody, PatternBody, RssPeak
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

FIXTURES = FIXTURES
AUDIO = (FIXTURES / "jfk.flac").read_bytes()
AUDIO_SHA256 = hashlib.sha256(AUDIO).hexdigest()
JFK_SECONDS = 11.0
#: SPEC: a 200 MB upload raises the API process's memory by less than 50 MB.
BIG_BYTES = 200 * MB
RSS_BOUND = 50 * MB


def create_upload(client: Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/uploads", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def put_file(url: str, data: Any = AUDIO, content_type: str = "audio/flac",
             timeout: float = 120) -> requests.Response:
    """PUT to a signed URL as a tool without the API key would."""
    return requests.put(url, data=data, headers={"Content-Type": content_type},
                        timeout=timeout)


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --------------------------------------------------------------------------- the whole flow


def test_signed_upload_flow(stack_client: Client, stack: Stack):
    upload = create_upload(stack_client, filename="jfk.flac")
    assert upload["upload_url"].startswith(f"{stack.base_url}/api/v1/uploads/{upload['id']}/")
    received = put_file(upload["upload_url"])
    assert received.status_code == 200, received.text
    assert (received.json()["size_bytes"], received.json()["sha256"]) == (len(AUDIO),
                                                                          AUDIO_SHA256)
    state = stack_client.get(f"/api/v1/uploads/{upload['id']}").json()
    assert state["status"] == "uploaded" and state["sha256"] == AUDIO_SHA256

    created = stack_client.post("/api/v1/transcriptions", json={
        "source": "upload", "upload_id": upload["id"], "language": "en"})
    assert created.status_code == 201, created.text
    polled = stack_client.get(f"/api/v1/transcriptions/{created.json()['id']}").json()
    assert polled["source"] == "upload" and polled["upload_id"] == upload["id"]
    assert polled["url"] is None


def test_a_chunked_put_is_stored_whole(stack_client: Client):
    """Without Content-Length (chunked transfer encoding), as browsers' streams send it."""
    upload = create_upload(stack_client)
    received = put_file(upload["upload_url"],
                        data=(AUDIO[i:i + 65536] for i in range(0, len(AUDIO), 65536)))
    assert received.status_code == 200, received.text
    assert received.json()["sha256"] == AUDIO_SHA256


def test_one_upload_one_transcription_under_concurrency(stack_client: Client):
    """Eight simultaneous creations for one upload: exactly one gets it; eight retries with
    one Idempotency-Key all get that one's answer."""
    upload = create_upload(stack_client)
    assert put_file(upload["upload_url"]).status_code == 200
    body = {"source": "upload", "upload_id": upload["id"]}

    def send(key: str | None) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return stack_client.post("/api/v1/transcriptions", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        racing = list(pool.map(send, [None] * 8))
    assert sorted(r.status_code for r in racing) == [201] + [422] * 7

    second = create_upload(stack_client)
    assert put_file(second["upload_url"]).status_code == 200
    body = {"source": "upload", "upload_id": second["id"]}
    key = f"idem-{secrets.token_hex(6)}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        retries = list(pool.map(send, [key] * 8))
    assert {r.status_code for r in retries} == {201}
    assert len({r.json()["id"] for r in retries}) == 1


@pytest.mark.parametrize(("path", "kind"), [
    ("/api/v1/transcriptions", "multipart"), ("/api/v1/transcriptions", "raw"),
    ("/transcribe", "multipart"), ("/transcribe", "raw"),
])
def test_one_request_uploads_are_created(stack_client: Client, path: str, kind: str):
    if kind == "multipart":
        response = stack_client.post(path, data={"language": "en", "align": "false"},
                                     files={"file": ("jfk.flac", AUDIO, "audio/flac")})
    else:
        response = stack_client.post(f"{path}?language=en&align=false", data=AUDIO,
                                     headers={"Content-Type": "audio/flac"})
    assert response.status_code == (201 if path.startswith("/api") else 200), response.text
    polled = stack_client.get(f"/api/v1/transcriptions/{response.json()['id']}").json()
    assert polled["source"] == "upload" and polled["align"] is False
    upload = stack_client.get(f"/api/v1/uploads/{polled['upload_id']}").json()
    assert (upload["size_bytes"], upload["sha256"]) == (len(AUDIO), AUDIO_SHA256)


# --------------------------------------------------------------------------- worker side


@pytest.mark.parametrize("how", ["signed_url", "multipart", "raw"])
def test_worker_transcribes_an_uploaded_file(stack_client: Client, stack: Stack, how: str):
    """Needs the worker side of uploads (worker/media/store.py reads the stored file). The file
    is deleted when the job ends (no retention configured)."""
    if how == "signed_url":
        upload = create_upload(stack_client)
        assert put_file(upload["upload_url"]).status_code == 200
        created = stack_client.post("/api/v1/transcriptions",
                                    json={"source": "upload", "upload_id": upload["id"]})
    elif how == "multipart":
        created = stack_client.post("/api/v1/transcriptions",
                                    files={"file": ("jfk.flac", AUDIO, "audio/flac")})
    else:
        created = stack_client.post("/transcribe", data=AUDIO,
                                    headers={"Content-Type": "audio/flac"})
    assert created.status_code in (200, 201), created.text
    body = stack_client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}")
    assert body["status"] == "completed", body
    assert body["audio_duration_seconds"] == pytest.approx(JFK_SECONDS, abs=0.1)
    # The worker lets go of the media just after it commits the job's end.
    deadline = time.monotonic() + 10
    while (upload := stack_client.get(f"/api/v1/uploads/{body['upload_id']}").json())[
            "status"] != "deleted" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upload["status"] == "deleted"


# --------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                pipelines_file: Path) -> Iterator[Stack]:
    """The API alone (no worker) with a 1 MB upload limit, on SQLite."""
    with running_stack(tmp_path_factory.mktemp("small-uploads"), redis_server.url,
                       pipelines_file, workers=0,
                       extra_env={"VOXHOOK_MAX_UPLOAD_MB": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def small_client(small_stack: Stack) -> Client:
    return Client(small_stack.base_url, small_stack.create_key())


def raw_request(url: str, method: str, headers: dict[str, str],
                chunks: Iterable[bytes] = ()) -> tuple[int, dict[str, Any]]:
    """Send headers, then ``chunks`` as a chunked body if any, and read the answer. A server
    that answers before the body is complete may stop reading: sending errors are expected
    then, and the answer is read all the same."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.putrequest(method, f"{parts.path}?{parts.query}")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for chunk in chunks:
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if chunks:
                connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_declared_size_over_the_limit_is_answered_before_the_body(small_client: Client,
                                                                     small_stack: Stack):
    upload = create_upload(small_client)
    # Only the headers are sent: the answer comes without waiting for a byte of the body.
    status, body = raw_request(upload["upload_url"], "PUT", {
        "Content-Type": "audio/flac", "Content-Length": str(2 * MB)})
    assert status == 413 and body["error"]["code"] == "file_too_large"
    assert body["error"]["max_bytes"] == MB
    assert files_in(small_stack.data_dir / "media") == []


def test_a_chunked_body_over_the_limit_is_cut_off(small_client: Client, small_stack: Stack):
    upload = create_upload(small_client)
    chunks = [b"\0" * 65536] * 32  # 2 MB, no Content-Length
    status, body = raw_request(upload["upload_url"], "PUT", {
        "Content-Type": "audio/flac", "Transfer-Encoding": "chunked"}, chunks)
    assert status == 413 and body["error"]["code"] == "file_too_large"
    assert files_in(small_stack.data_dir / "media" / "store") == []
    state = small_client.get(f"/api/v1/uploads/{upload['id']}").json()
    assert state["status"] == "pending"
    assert put_file(upload["upload_url"], data=AUDIO[:MB]).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/transcriptions", "/transcribe"])
def test_one_request_uploads_over_the_limit_are_refused(small_client: Client,
                                                        small_stack: Stack, path: str):
    """jfk.flac is 1.1 MB; a 3 MB multipart body passes even the multipart allowance (and is
    refused by its Content-Length, unread).

    Each on a new connection: gunicorn closes one whose request body was not read (after
    draining 64 KB), although its answer said keep-alive, so a pooled connection would be
    stale for the next request.
    """
    url, auth = small_client.base_url + path, dict(small_client.session.headers)
    stored_before = files_in(small_stack.data_dir / "media" / "store")
    for response in (
        requests.post(url, files={"file": ("jfk.flac", AUDIO, "audio/flac")}, headers=auth),
        requests.post(url, files={"file": ("big.wav", b"\0" * 3 * MB, "audio/wav")},
                      headers=auth),
        requests.post(url, data=AUDIO, headers={**auth, "Content-Type": "audio/flac"}),
    ):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "file_too_large"
    assert files_in(small_stack.data_dir / "media" / "store") == stored_before
    assert files_in(small_stack.data_dir / "media" / "incoming") == []


def test_expired_and_tampered_urls_are_refused(small_client: Client, small_stack: Stack):
    upload = create_upload(small_client)
    key = signing_key(Settings(data_dir=small_stack.data_dir))  # the key the API made
    past = int(time.time()) - 1
    base = f"{small_stack.base_url}/api/v1/uploads/{upload['id']}/content"
    expired = put_file(f"{base}?expires={past}&signature={sign(key, UPLOAD, upload['id'], past)}")
    assert (expired.status_code, expired.json()["error"]["code"]) == (403, "upload_url_expired")
    tampered = put_file(upload["upload_url"].replace("signature=", "signature=x"))
    assert (tampered.status_code, tampered.json()["error"]["code"]) == (403,
                                                                        "upload_url_invalid")


# --------------------------------------------------------------------------- memory


@pytest.fixture(scope="module")
def lean_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
               pipelines_file: Path) -> Iterator[Stack]:
    """The API alone in one gunicorn worker process, whose memory is measured."""
    with running_stack(tmp_path_factory.mktemp("lean-uploads"), redis_server.url,
                       pipelines_file, workers=0, api_workers=1) as stack:
        yield stack


@pytest.fixture(scope="module")
def lean_client(lean_stack: Stack) -> Client:
    client = Client(lean_stack.base_url, lean_stack.create_key())
    for _ in range(2):  # warm every code path up, so that lazy imports are not counted
        send_put(client, PatternBody(MB))
        send_multipart(client, "/api/v1/transcriptions", PatternBody(MB))
        send_raw(client, "/transcribe", PatternBody(MB))
    return client


def send_put(client: Client, body: PatternBody) -> dict[str, Any]:
    upload = create_upload(client)
    response = put_file(upload["upload_url"], data=body, content_type="audio/wav")
    assert response.status_code == 200, response.text
    return response.json()


def send_multipart(client: Client, path: str, file: PatternBody) -> dict[str, Any]:
    body = MultipartBody({"language": "en"}, file, "big.wav", "audio/wav")
    response = client.session.post(client.base_url + path, data=body,
                                   headers={"Content-Type": body.content_type}, timeout=120)
    assert response.status_code in (200, 201), response.text
    return response.json()


def send_raw(client: Client, path: str, file: PatternBody) -> dict[str, Any]:
    response = client.session.post(f"{client.base_url}{path}?language=en", data=file,
                                   headers={"Content-Type": "audio/wav"}, timeout=120)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.mark.parametrize("how", ["PUT upload_url", "multipart POST /api/v1/transcriptions",
                                 "raw POST /transcribe"])
def test_a_200_mb_upload_keeps_the_api_memory_flat(lean_stack: Stack, lean_client: Client,
                                                   how: str):
    (worker,) = lean_stack.api_worker_pids()
    file = PatternBody(BIG_BYTES)
    started = time.monotonic()
    with RssPeak(worker) as rss:
        if how.startswith("PUT"):
            upload_id = send_put(lean_client, file)["id"]
        elif how.startswith("multipart"):
            upload_id = send_multipart(lean_client, "/api/v1/transcriptions", file)["upload_id"]
        else:
            created = send_raw(lean_client, "/transcribe", file)
            upload_id = lean_client.get(f"/api/v1/transcriptions/{created['id']}").json()[
                "upload_id"]
    seconds = time.monotonic() - started
    print(f"\n{how}: {BIG_BYTES // MB} MB in {seconds:.1f} s; API worker RSS "
          f"{rss.before / MB:.1f} MB before, peak {rss.peak / MB:.1f} MB, rise "
          f"{rss.rise / MB:.1f} MB ({rss.samples} samples)")
    upload = lean_client.get(f"/api/v1/uploads/{upload_id}").json()
    assert (upload["size_bytes"], upload["sha256"]) == (BIG_BYTES, file.sha256)
    assert rss.rise < RSS_BOUND
    assert files_in(lean_stack.data_dir / "media" / "incoming") == []
