"""End to end: media that must be refused or bounded, and media that must still work, through
the real API and worker (one stack, SQLite, the v1 surface).

The stack runs under small limits (1 minute of audio, 2 MB per download, a 2 s read timeout
and 4 s for a whole download) so that each limit can be reached with small files. After every
failure the same worker must go on: a plain jfk.flac job queued behind it still completes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.ops.embedded_redis import EmbeddedRedis
from tests.support import media_files
from tests.support.listeners import Behaviour, Listener, trickle_body, trickle_headers
from tests.support.media_server import MediaServer
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

LIMITS = {"VOXHOOK_MAX_AUDIO_MINUTES": "1", "VOXHOOK_MAX_DOWNLOAD_MB": "2",
          "VOXHOOK_FETCH_READ_TIMEOUT_S": "2", "VOXHOOK_FETCH_TOTAL_TIMEOUT_S": "4"}
TOTAL_TIMEOUT_S = 4.0

#: name in the media folder -> how its transcription must end: ("failed", code, phrase) or
#: ("completed", seconds of audio, tolerance).
EXPECTED: dict[str, tuple[str, Any, Any]] = {
    "big.flac": ("failed", "file_too_large", "larger than the limit of 2 mb"),
    "long.flac": ("failed", "audio_too_long", "1 minute 1 second long"),
    "long-undeclared.flac": ("failed", "audio_too_long", "longer than 1 minute"),
    "notes.txt": ("failed", "not_audio", "not audio or video"),
    "noise.mp3": ("failed", "not_audio", "not audio or video"),
    "picture.png": ("failed", "not_audio", "not audio or video"),
    "silent.mp4": ("failed", "not_audio", "video without a sound track"),
    "half.flac": ("completed", 5.5, 0.7),
    "talk.mp4": ("completed", 11.0, 0.1),
    "surround.flac": ("completed", 11.0, 0.1),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """The files of :data:`EXPECTED` and jfk.flac, served on loopback."""
    folder = tmp_path_factory.mktemp("limits-media")
    shutil.copy(media_files.JFK, folder / "jfk.flac")
    media_files.random_bytes(folder / "big.flac", size=3 * 1024 * 1024)
    media_files.beeps_flac(folder / "long.flac", seconds=61)
    media_files.declare_flac_length(
        media_files.beeps_flac(folder / "long-undeclared.flac", seconds=90), 0)
    media_files.text_file(folder / "notes.txt")
    media_files.random_bytes(folder / "noise.mp3")
    media_files.png_image(folder / "picture.png")
    media_files.video_without_audio(folder / "silent.mp4")
    media_files.truncated(folder / "half.flac", 0.5)
    media_files.video_with_audio(folder / "talk.mp4")
    media_files.surround_flac(folder / "surround.flac")
    assert set(EXPECTED) <= {path.name for path in folder.iterdir()}
    with MediaServer(folder) as server:
        yield server


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                  pipelines_file: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("limits-stack"), redis_server.url,
                       pipelines_file, extra_env=LIMITS) as instance:
        yield instance


@pytest.fixture(scope="module")
def client(limited_stack: Stack) -> Client:
    return Client(limited_stack.base_url, limited_stack.create_key())


def create(client: Client, url: str) -> str:
    response = client.post("/api/v1/transcriptions", json={"source": "external_url",
                                                           "url": url})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def final(client: Client, transcription_id: str, timeout_s: float = 120) -> dict[str, Any]:
    return client.wait_final(f"/api/v1/transcriptions/{transcription_id}", timeout_s)


@pytest.fixture(scope="module")
def outcomes(client: Client, media: MediaServer) -> dict[str, dict[str, Any]]:
    """Every file of :data:`EXPECTED` queued at once, then jfk.flac behind them all."""
    ids = {name: create(client, media.url(name)) for name in [*EXPECTED, "jfk.flac"]}
    return {name: final(client, transcription_id) for name, transcription_id in ids.items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_ends_as_it_should(outcomes: dict[str, dict[str, Any]], name: str) -> None:
    body, (status, expected, detail) = outcomes[name], EXPECTED[name]
    assert body["status"] == status, body
    if status == "failed":
        assert body["error"]["code"] == expected
        assert detail in body["error"]["message"].lower()
        assert body["result"] is None and body["cost_usd"] is None
    else:
        assert body["error"] is None
        assert body["audio_duration_seconds"] == pytest.approx(expected, abs=detail)
        assert body["result"]["duration_seconds"] == pytest.approx(expected, abs=detail)


def test_truncated_file_is_shorter_than_the_whole(outcomes: dict[str, dict[str, Any]]) -> None:
    """Half of jfk.flac's bytes: the part that is there, not the 11 s its header declares."""
    assert outcomes["half.flac"]["audio_duration_seconds"] < 0.7 * 11.0


def test_the_worker_goes_on_after_the_failures(outcomes: dict[str, dict[str, Any]]) -> None:
    body = outcomes["jfk.flac"]
    assert body["status"] == "completed", body
    assert body["audio_duration_seconds"] == pytest.approx(11.0, abs=0.1)


def _elapsed_s(body: dict[str, Any]) -> float:
    started, completed = (datetime.fromisoformat(body[key])
                          for key in ("started_at", "completed_at"))
    return (completed - started).total_seconds()


@pytest.mark.parametrize("behaviour", [trickle_body(0.3, declared=500_000), trickle_headers(0.3)],
                         ids=["slow-body", "slow-headers"])
def test_slow_loris_ends_in_the_total_timeout(client: Client, media: MediaServer,
                                              behaviour: Behaviour) -> None:
    """A server that keeps sending a byte (or a header line) every 0.3 s beats the 2 s read
    timeout forever; the download still fails within about the 4 s total, and the next job
    runs."""
    with Listener("127.0.0.1", behaviour) as server:
        slow = create(client, server.url("/slow.flac"))
        good = create(client, media.url("jfk.flac"))
        body = final(client, slow, timeout_s=60)
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "download_timeout", body["error"]
    assert TOTAL_TIMEOUT_S - 1 <= _elapsed_s(body) <= TOTAL_TIMEOUT_S + 4
    assert final(client, good)["status"] == "completed"
