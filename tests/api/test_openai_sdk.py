"""OpenAI's own Python SDK, unmodified, against a live Voxhook: every response format parses
into the SDK's typed objects, streaming yields deltas, errors raise the SDK's exceptions, and
the request is an ordinary transcription (listed, with its cost)."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import openai
import pytest
import requests
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    TranslationVerbose,
)

from tests.conftest import FIXTURES
from tests.support.stack import Stack

JFK = FIXTURES / "jfk.flac"
SAMPLE = FIXTURES / "sample.wav"


@pytest.fixture(scope="module")
def client(api_stack: Stack, api_stack_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api_stack.base_url}/v1", api_key=api_stack_key,
                         max_retries=0, timeout=120)


def direct(api_stack: Stack, key: str, path: str) -> dict:
    response = requests.get(f"{api_stack.base_url}{path}",
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_json_is_a_transcription_and_an_ordinary_one(client, api_stack, api_stack_key):
    with JFK.open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=audio)
    result = raw.parse()
    assert isinstance(result, Transcription)
    assert result.usage is not None and result.usage.type == "duration"
    assert result.usage.seconds == 11
    transcription_id = raw.headers["x-voxhook-transcription-id"]
    stored = direct(api_stack, api_stack_key, f"/api/v1/transcriptions/{transcription_id}")
    assert stored["status"] == "completed" and stored["source"] == "upload"
    assert result.text == stored["result"]["full_transcript"]
    assert stored["cost_usd"] is not None  # billed like any other
    listed = direct(api_stack, api_stack_key, "/api/v1/transcriptions?limit=5")
    assert transcription_id in [item["id"] for item in listed["data"]]


def test_verbose_json_has_segments_and_words(client, api_stack, api_stack_key):
    with JFK.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json",
            timestamp_granularities=["word", "segment"], language="en", temperature=0.0,
            prompt="Kennedy's inaugural address.")
    assert isinstance(result, TranscriptionVerbose)
    assert result.duration == pytest.approx(11.0, abs=0.01)
    assert result.language == "en"
    assert result.segments and result.words
    assert " ".join(s.text for s in result.segments) == result.text
    for word in result.words:
        assert 0 <= word.start <= word.end <= result.duration


def test_words_only_when_asked(client):
    with JFK.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json")
    assert result.segments and not result.words


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_text_formats_come_back_as_strings(client, response_format):
    with JFK.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format=response_format)
    assert isinstance(result, str) and result.strip()
    if response_format == "vtt":
        assert result.startswith("WEBVTT")
    if response_format == "srt":
        assert result.startswith("1\n00:00:")


def test_diarized_json_labels_speakers(client):
    with SAMPLE.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=audio, response_format="diarized_json",
            chunking_strategy="auto")
    assert isinstance(result, TranscriptionDiarized)
    assert result.segments
    assert all(s.type == "transcript.text.segment" and s.speaker.startswith("SPEAKER ")
               for s in result.segments)


def clip(source: Path, start_s: float, seconds: float) -> str:
    """A data URL of ``seconds`` of ``source`` (a 16 kHz mono WAV) from ``start_s``."""
    with wave.open(str(source)) as reader:
        rate = reader.getframerate()
        reader.setpos(int(start_s * rate))
        frames = reader.readframes(int(seconds * rate))
        params = reader.getparams()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setparams(params)
        writer.writeframes(frames)
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_known_speakers_name_the_speakers(client):
    """Two reference clips cut from the file itself name its speakers. (The test's
    diarizer is a random model: this proves the plumbing, references embedded by the
    diarizer's own embedding model and matched by cosine, not accuracy.)"""
    with SAMPLE.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=audio, response_format="diarized_json",
            known_speaker_names=["diane", "sheila"],
            known_speaker_references=[clip(SAMPLE, 10.6, 4.0), clip(SAMPLE, 15.0, 3.0)])
    speakers = {s.speaker for s in result.segments}
    assert speakers & {"diane", "sheila"}, speakers
    assert speakers <= {"diane", "sheila", "SPEAKER 1", "SPEAKER 2", "SPEAKER 3"}


def test_a_short_reference_clip_is_a_bad_request(client):
    with SAMPLE.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=audio, response_format="diarized_json",
            known_speaker_names=["diane"], known_speaker_references=[clip(SAMPLE, 10.6, 1.0)])
    assert caught.value.code == "invalid_speaker_reference"
    assert "2 to 10 seconds" in caught.value.message


def test_translation(client):
    with JFK.open("rb") as audio:
        result = client.audio.translations.create(model="whisper-1", file=audio,
                                                  response_format="verbose_json")
    assert isinstance(result, TranslationVerbose)
    assert result.duration == pytest.approx(11.0, abs=0.01)
    with JFK.open("rb") as audio:
        assert client.audio.translations.create(model="whisper-1", file=audio).text


def test_streaming_yields_deltas_then_the_stored_text(client):
    with JFK.open("rb") as audio:
        events = list(client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=audio, stream=True))
    types = [event.type for event in events]
    assert types[-1] == "transcript.text.done" and "transcript.text.delta" in types
    assert types.count("transcript.text.done") == 1
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.split() == events[-1].text.split()


def test_models_lists_pipelines_and_openai_names(client):
    ids = [model.id for model in client.models.list()]
    assert "tiny" in ids and "whisper-1" in ids and "qwen3-asr-flash-filetrans" in ids
    assert client.models.retrieve("tiny").owned_by == "voxhook"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_bad_key_raises_authentication_error(api_stack):
    bad = openai.OpenAI(base_url=f"{api_stack.base_url}/v1", api_key="sk_live_" + "x" * 40,
                        max_retries=0)
    with JFK.open("rb") as audio, pytest.raises(openai.AuthenticationError) as caught:
        bad.audio.transcriptions.create(model="whisper-1", file=audio)
    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "invalid_request_error"


def test_a_file_that_is_not_audio_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="whisper-1", file=("notes.txt", b"not audio at all\n" * 50, "text/plain"))
    assert caught.value.param == "file"
    assert caught.value.code in ("not_audio", "unsupported_media")


def test_bad_fields_name_the_param(client):
    with JFK.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="no-such-model", file=audio)
    assert caught.value.param == "model" and "whisper-1" in caught.value.message
    with JFK.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=audio,
                                           response_format="docx")  # type: ignore[arg-type]
    assert caught.value.param == "response_format"
    with JFK.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=audio,
                                           extra_body={"colour": "blue"})
    assert caught.value.param == "colour"
