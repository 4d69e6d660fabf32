"""End to end with speaker labels: the service (gunicorn API, RQ worker with the real
faster-whisper and pyannote.audio code on small random models) labels speakers on both
surfaces, and exports what it labelled; a worker without pyannote fails such jobs clearly."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

from app.ops.embedded_redis import EmbeddedRedis
from tests.conftest import drop_database, make_database_url
from tests.support.stack import Client, Stack


def check_speakers(result: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
    """Every word labelled with a listed speaker; labels numbered by first appearance in the
    transcript (speakers heard without words after them); each utterance one speaker's.
    Returns the words."""
    words = [word for utterance in result["utterances"] for word in utterance["words"]]
    assert words, "no words: the check would be empty"
    first_appearance = list(dict.fromkeys(word["speaker"] for word in words))
    assert result["speakers"][:len(first_appearance)] == first_appearance
    assert result["speakers"] == [f"SPEAKER {n}" for n in
                                  range(1, len(result["speakers"]) + 1)]
    if count is not None:
        assert len(result["speakers"]) == count
    for utterance in result["utterances"]:
        assert utterance["speaker"] in result["speakers"]
        assert {word["speaker"] for word in utterance["words"]} <= {utterance["speaker"]}
    return words


def test_quickstart_two_speakers_on_sample(stack_client: Client, media_server):
    """sample.wav with speaker_count 2: exactly two speakers, every word labelled, labels
    numbered by first appearance; align false is overridden by diarize."""
    created = stack_client.post("/transcribe", json={
        "url": media_server.url("sample.wav"), "diarize": True, "speaker_count": 2,
        "align": False})
    assert created.status_code == 200, created.text
    body = stack_client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body
    check_speakers(body["result"], count=2)


def test_v1_bounds_and_exports_carry_the_labels(stack_client: Client, media_server):
    """v1 with min/max speakers; the SRT and WebVTT exports, read by independent parsers,
    carry the same words, times and speakers as the JSON."""
    created = stack_client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("sample.wav"), "diarize": True,
        "min_speakers": 2, "max_speakers": 3})
    assert created.status_code == 201, created.text
    assert (created.json()["min_speakers"], created.json()["max_speakers"]) == (2, 3)
    transcription_id = created.json()["id"]
    body = stack_client.wait_final(f"/api/v1/transcriptions/{transcription_id}")
    assert body["status"] == "completed", body
    words = check_speakers(body["result"])
    assert 2 <= len(body["result"]["speakers"]) <= 3

    vtt = stack_client.get(f"/api/v1/transcriptions/{transcription_id}/export",
                           params={"format": "vtt"})
    assert vtt.status_code == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    utterances = body["result"]["utterances"]
    # What captions show: each utterance's words (its text where the engine gave no words).
    shown = [token for u in utterances
             for token in ([w["word"] for w in u["words"]] or u["text"].split())]
    captions = webvtt.from_string(vtt.text)
    assert {caption.voice for caption in captions} == {u["speaker"] for u in utterances}
    assert [token for caption in captions for token in caption.text.split()] == shown
    assert captions[0].start_time.in_milliseconds() == round(utterances[0]["start"] * 1000)

    subtitles = list(srt.parse(stack_client.get(f"/transcribe/{transcription_id}/export",
                                                params={"format": "srt"}).text))
    assert subtitles[0].content.startswith(f"{utterances[0]['speaker']}: ")
    assert subtitles[-1].end.total_seconds() == pytest.approx(utterances[-1]["end"], abs=1e-3)
    assert any(caption.text.split()[:1] == [words[0]["word"]] for caption in captions)

    text = stack_client.get(f"/api/v1/transcriptions/{transcription_id}/export",
                            params={"format": "txt"}).text
    assert text.startswith(f"{utterances[0]['speaker']}: {shown[0]}")


def test_undiarized_jobs_on_a_diarizing_pipeline_have_no_speakers(stack_client: Client,
                                                                   media_server):
    created = stack_client.post("/transcribe", json={"url": media_server.url("jfk.flac")})
    body = stack_client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body
    assert body["result"]["speakers"] == []
    assert all(u["speaker"] is None for u in body["result"]["utterances"])


def test_a_worker_without_pyannote_fails_diarized_jobs_clearly(
        tmp_path: Path, redis_server: EmbeddedRedis, diarizing_pipelines_file: Path,
        media_server):
    """pyannote.audio missing on the worker (played by a package that shadows it and fails
    to import): plain jobs complete, diarized ones fail with model_unavailable saying how to
    install it, /readyz says what is missing, and the worker keeps serving."""
    shadow = tmp_path / "shadow"
    (shadow / "pyannote").mkdir(parents=True)
    (shadow / "pyannote" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'pyannote.audio'\")\n")
    database_url = make_database_url("sqlite", tmp_path)
    stack = Stack(data_dir=tmp_path / "data", database_url=database_url,
                  redis_url=redis_server.url, pipelines_path=diarizing_pipelines_file,
                  extra_env={"PYTHONPATH": str(shadow)},
                  queue=f"voxhook-test-nopyannote-{secrets.token_hex(3)}")
    try:
        stack.start_api()
        stack.start_worker()
        client = Client(stack.base_url, stack.create_key())
        diarized = client.post("/transcribe", json={"url": media_server.url("jfk.flac"),
                                                    "diarize": True}).json()
        plain = client.post("/transcribe", json={"url": media_server.url("jfk.flac")}).json()
        failed = client.wait_final(f"/transcribe/{diarized['id']}")
        assert failed["status"] == "failed"
        assert failed["error_code"] == "model_unavailable"
        assert "pyannote.audio is not installed" in failed["error"]
        assert "voxhook[diarization]" in failed["error"]
        assert client.wait_final(f"/transcribe/{plain['id']}")["status"] == "completed"
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert any("pyannote.audio is not installed" in line
                   for line in readiness.json()["missing"])
    finally:
        stack.stop()
        drop_database(database_url)
