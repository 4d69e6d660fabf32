"""End to end: real Redis, the API under gunicorn, a worker with the real faster-whisper
engine on a locally built model, media served over loopback HTTP; on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import WhisperModel
from sqlalchemy import create_engine, func, select

from app.store.models import Transcription
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack

FIXTURES = FIXTURES
#: Real lengths of the fixtures (SOURCES.md).
DURATIONS = {"jfk.flac": 11.0, "sample.wav": 30.0}


def expected_cost_cents(duration_s: float) -> float:
    """0.20 USD per hour, billed per started second, in cents to 4 decimals (independent)."""
    cents = Decimal(math.ceil(round(duration_s, 3))) * Decimal(20) / Decimal(3600)
    return float(cents.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def check_result(result: dict[str, Any], duration: float, with_words: bool) -> None:
    """Every invariant of SPEC.md §2's result, whatever the model said."""
    assert set(result) == {"full_transcript", "language", "duration_seconds", "speakers",
                           "utterances"}
    assert isinstance(result["language"], str) and len(result["language"]) == 2
    assert result["duration_seconds"] == pytest.approx(duration, abs=0.1)
    assert result["speakers"] == []
    assert result["full_transcript"] == " ".join(u["text"] for u in result["utterances"])
    previous_end = 0.0
    for utterance in result["utterances"]:
        assert isinstance(utterance["text"], str)
        assert utterance["speaker"] is None
        assert 0.0 <= utterance["confidence"] <= 1.0
        assert previous_end <= utterance["start"] <= utterance["end"] <= duration
        previous_end = utterance["end"]
        if not with_words:
            assert "words" not in utterance
            continue
        word_end = utterance["start"]
        for word in utterance["words"]:
            assert isinstance(word["word"], str) and word["word"]
            assert 0.0 <= word["confidence"] <= 1.0
            assert word["speaker"] is None
            assert utterance["start"] <= word["start"] <= word["end"] <= utterance["end"]
            assert word["start"] >= word_end  # times never go backwards
            word_end = word["end"]
    if with_words:
        assert any(u["words"] for u in result["utterances"])


@pytest.mark.parametrize("fixture", ["jfk.flac", "sample.wav"])
def test_quickstart_completes_with_every_field(stack_client: Client, media_server, fixture):
    created = stack_client.post("/transcribe", json={"url": media_server.url(fixture)})
    assert created.status_code == 200
    assert created.json()["status"] == "queued"
    assert created.json()["id"].startswith("tr_")

    body = stack_client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body
    duration = DURATIONS[fixture]
    assert body["audio_duration_seconds"] == pytest.approx(duration, abs=0.1)
    assert body["cost_cents"] == expected_cost_cents(body["audio_duration_seconds"])
    assert body["progress"] == 1.0
    assert body["error"] is None
    check_result(body["result"], duration, with_words=True)


def test_quickstart_without_alignment_has_no_words(stack_client: Client, media_server):
    created = stack_client.post("/transcribe", json={"url": media_server.url("jfk.flac"),
                                                     "align": False, "language": "en"})
    body = stack_client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body
    assert body["result"]["language"] == "en"
    check_result(body["result"], DURATIONS["jfk.flac"], with_words=False)


def test_v1_completes_and_is_visible_on_both_surfaces(stack_client: Client, media_server):
    created = stack_client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": media_server.url("jfk.flac"),
        "pipeline_code": "qwen3-asr-flash-filetrans", "language": "auto"})
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["id"].startswith("tr_") and first["status"] == "queued"
    assert first["pipeline_code"] == "tiny"  # the alias resolves to the local pipeline

    body = stack_client.wait_final(f"/api/v1/transcriptions/{first['id']}")
    assert body["status"] == "completed", body
    # 11 s at 0.0285 USD a minute, prorated per second: exactly 0.005225 USD.
    assert body["cost_usd"] == "0.005225"
    assert body["error"] is None
    check_result(body["result"], DURATIONS["jfk.flac"], with_words=True)
    quickstart_view = stack_client.get(f"/transcribe/{first['id']}").json()
    assert quickstart_view["result"] == body["result"]


def test_service_returns_exactly_what_faster_whisper_returns(stack_client: Client, media_server,
                                                              tiny_model: Path):
    """Same model, audio and decoding options: the same words, times and language."""
    created = stack_client.post("/transcribe", json={"url": media_server.url("sample.wav")})
    body = stack_client.wait_final(f"/transcribe/{created.json()['id']}")
    assert body["status"] == "completed", body

    model = WhisperModel(str(tiny_model), device="cpu", compute_type="int8")
    segments, info = model.transcribe(
        str(FIXTURES / "sample.wav"), beam_size=1, temperature=0.0, vad_filter=True,
        max_new_tokens=48, word_timestamps=True, condition_on_previous_text=True)
    direct_words = [w.word.strip() for s in segments for w in (s.words or []) if w.word.strip()]
    service_words = [w["word"] for u in body["result"]["utterances"] for w in u["words"]]
    assert direct_words, "the direct call produced no words; the comparison would be empty"
    assert service_words == direct_words
    assert body["result"]["language"] == info.language


@pytest.mark.parametrize(("path", "code", "phrase"), [
    ("missing/file.mp3", "url_http_error", "404"),
    ("notes.txt", "not_audio", "not audio"),
    ("empty", "empty_file", "empty"),
])
def test_bad_media_fails_clearly_and_the_worker_goes_on(stack_client: Client, media_server,
                                                        path, code, phrase):
    bad = stack_client.post("/transcribe", json={"url": media_server.url(path)}).json()
    good = stack_client.post("/transcribe", json={"url": media_server.url("jfk.flac")}).json()

    failed = stack_client.wait_final(f"/transcribe/{bad['id']}")
    assert failed["status"] == "failed"
    assert failed["error_code"] == code
    assert phrase in failed["error"].lower()
    assert failed["cost_cents"] is None and failed["result"] is None
    v1_view = stack_client.get(f"/api/v1/transcriptions/{bad['id']}").json()
    assert v1_view["error"] == {"code": code, "message": failed["error"]}

    assert stack_client.wait_final(f"/transcribe/{good['id']}")["status"] == "completed"


def test_model_is_loaded_once_per_worker_process(stack_client: Client, media_server,
                                                 stack: Stack):
    ids = [stack_client.post("/transcribe", json={"url": media_server.url("jfk.flac")}).json()
           ["id"] for _ in range(3)]
    for transcription_id in ids:
        assert stack_client.wait_final(f"/transcribe/{transcription_id}")["status"] == "completed"
    readiness = stack_client.get("/readyz").json()
    workers = readiness["checks"]["workers"]["pipelines"]
    assert len(workers) == 1
    (pipelines,) = workers.values()
    assert pipelines["tiny"] == {"state": "ready", "error": None, "loads": 1, "diarization": {
        "state": "ready", "error": None, "loads": 1}}


def test_idempotency_key_replays_and_refuses_other_bodies(stack_client: Client, media_server):
    key = f"idem-{secrets.token_hex(6)}"
    body = {"source": "external_url", "url": media_server.url("jfk.flac")}
    first = stack_client.post("/api/v1/transcriptions", json=body,
                              headers={"Idempotency-Key": key})
    second = stack_client.post("/api/v1/transcriptions", json=body,
                               headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()

    other = stack_client.post("/api/v1/transcriptions", headers={"Idempotency-Key": key},
                              json={**body, "language": "de"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_twenty_concurrent_requests_with_one_key_create_one_transcription(
        stack_client: Client, media_server, stack: Stack):
    key = f"idem-{secrets.token_hex(6)}"
    url = media_server.url(f"jfk.flac?run={key}")  # a URL no other test uses
    body = {"source": "external_url", "url": url}

    def send(_: int):
        return stack_client.post("/api/v1/transcriptions", json=body,
                                 headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.json() == responses[0].json() for r in responses)

    engine = create_engine(stack.database_url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Transcription)
                                  .where(Transcription.url == url))
    engine.dispose()
    assert count == 1


def test_progress_is_visible_while_the_job_runs(stack_client: Client, media_server):
    """A 10-minute file: polling sees `processing` with progress strictly between 0 and 1,
    never going backwards, then 1.0 at completion; the duration is known before the end."""
    created = stack_client.post("/transcribe", json={"url": media_server.url("long.wav")}).json()
    seen: list[tuple[str, float, float | None]] = []
    body: dict[str, Any] = {}
    for _ in range(6000):
        body = stack_client.get(f"/transcribe/{created['id']}").json()
        seen.append((body["status"], body["progress"], body["audio_duration_seconds"]))
        if body["status"] in ("completed", "failed"):
            break
        time.sleep(0.02)
    assert body["status"] == "completed", body
    running = [progress for status, progress, _ in seen if status == "processing"]
    assert any(0.0 < progress < 1.0 for progress in running), seen[-20:]
    assert running == sorted(running)
    assert any(duration == pytest.approx(600.0, abs=0.1)
               for status, _, duration in seen if status == "processing")
    assert body["progress"] == 1.0
