"""A worker on another machine: it does not share the API's data directory, so it fetches
uploaded files through the API's signed internal download URL.

Two data directories play two machines: the API keeps uploads under its own, the worker has
an empty one and knows the API only by ``VOXHOOK_INTERNAL_API_URL``; both share the database,
Redis and ``VOXHOOK_SECRET_KEY``, as a real multi-machine deployment must.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.ops.embedded_redis import EmbeddedRedis
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack

pytestmark = pytest.mark.e2e

FIXTURES = FIXTURES
AUDIO = (FIXTURES / "jfk.flac").read_bytes()


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                 pipelines_file: Path) -> Iterator[tuple[Stack, Stack]]:
    """(API machine, worker machine): one API, one worker, separate data directories."""
    folder = tmp_path_factory.mktemp("two-machines")
    shared = {"VOXHOOK_SECRET_KEY": secrets.token_urlsafe(32)}
    database_url = f"sqlite:///{folder}/shared.sqlite"
    api = Stack(data_dir=folder / "api-machine", database_url=database_url,
                redis_url=redis_server.url, pipelines_path=pipelines_file,
                extra_env=shared)
    # The worker's allowlist does not name the API: the operator-configured internal URL is
    # trusted on its own, user URLs still are not.
    worker = Stack(data_dir=folder / "worker-machine", database_url=database_url,
                   redis_url=redis_server.url, pipelines_path=pipelines_file,
                   queue=api.queue, port=api.port, allowlist="",
                   extra_env={**shared, "VOXHOOK_INTERNAL_API_URL": api.base_url})
    try:
        api.start_api()
        worker.start_worker()
        api.wait_ready(timeout_s=120)
        yield api, worker
    finally:
        worker.stop()
        api.stop()


def test_remote_worker_transcribes_an_upload_through_the_internal_url(
        two_machines: tuple[Stack, Stack]) -> None:
    """The upload is stored on the API's machine only; the worker downloads it through the
    signed internal URL and completes the transcription; afterwards the API machine's copy
    is deleted by the API's own sweep (the worker cannot delete another machine's file)."""
    api, worker = two_machines
    client = Client(api.base_url, api.create_key())
    upload = client.post("/api/v1/uploads", json={"filename": "jfk.flac"}).json()
    assert requests.put(upload["upload_url"], data=AUDIO, timeout=30).status_code == 200
    assert [p.read_bytes() for p in files_in(api.data_dir / "media")] == [AUDIO]
    created = client.post("/api/v1/transcriptions",
                          json={"source": "upload", "upload_id": upload["id"]})
    assert created.status_code == 201, created.text
    body = client.wait_final(f"/api/v1/transcriptions/{created.json()['id']}")
    assert body["status"] == "completed", body
    assert body["audio_duration_seconds"] == pytest.approx(11.0, abs=0.1)
    assert "/internal/media/" in api.log("api")  # fetched over HTTP, not from a shared disk
    # The worker's download goes with its work folder, just after the job's end commits.
    deadline = time.monotonic() + 10
    while files_in(worker.data_dir / "media") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not files_in(worker.data_dir / "media")
    # The API sweeps by itself after requests (at most every 5 minutes); the command sweeps
    # now, whichever comes first.
    swept = api.cli("media", "sweep")
    assert swept.stdout.startswith("Deleted "), swept.stdout + swept.stderr
    assert not files_in(api.data_dir / "media")


def test_internal_download_url_refuses_a_forged_signature(
        two_machines: tuple[Stack, Stack]) -> None:
    """The internal download route is not a way around the API key: without a valid
    signature it answers 403 and sends no bytes."""
    api, _ = two_machines
    client = Client(api.base_url, api.create_key())
    upload = client.post("/api/v1/uploads", json={"filename": "jfk.flac"}).json()
    assert requests.put(upload["upload_url"], data=AUDIO, timeout=30).status_code == 200
    forged = (f"{api.base_url}/internal/media/{upload['id']}?expires=9999999999"
              f"&signature={'A' * 43}")
    response = requests.get(forged, timeout=10)
    assert response.status_code == 403
    assert AUDIO[:64] not in response.content
