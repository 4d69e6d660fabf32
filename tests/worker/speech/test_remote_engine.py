"""The remote engine (:mod:`worker.speech.remote_engine`) against a loopback server that
answers like vLLM: pieces cut at silences and stitched with continuous times, words kept,
failures retried then reported with the engine named, the address guard, the key."""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator

import numpy as np
import pytest

from app.config import Settings
from app.transcriptions.pipelines import Pipeline, parse_catalog
from tests.support.fake_openai import FakeOpenAi
from worker.errors import EngineFailed
from worker.remote_http import RemoteCaller
from worker.speech.remote_engine import RemoteAsrEngine, parse_answer
from worker.speech.splitting import SAMPLE_RATE


def talk(seconds: float) -> np.ndarray:
    """Tone bursts of 2.5 s with 0.5 s of silence between them."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.where(t % 3.0 < 2.5, 0.3 * np.sin(2 * np.pi * 220 * t), 0.0).astype(np.float32)


def remote_pipeline(base_url: str, extra: str = "", concurrency: int = 3,
                    max_piece_seconds: int = 30) -> Pipeline:
    document = tomllib.loads(f'''
[[pipeline]]
code = "remote"
[pipeline.engine]
base_url = "{base_url}"
model = "mistralai/Voxtral-Mini-3B-2507"
max_piece_seconds = {max_piece_seconds}
retries = 2
backoff_s = 0.01
timeout_s = 1.5
concurrency = {concurrency}
{extra}
''')
    return parse_catalog(document, Settings(), "test").pipelines[0]


@pytest.fixture
def vllm() -> Iterator[FakeOpenAi]:
    with FakeOpenAi(max_seconds=30, slow_s=3.0) as server:
        yield server


LOOPBACK = Settings(fetch_allowlist=("127.0.0.1",))


def engine(server: FakeOpenAi, settings: Settings = LOOPBACK, extra: str = "",
           **options: int) -> RemoteAsrEngine:
    pipeline = remote_pipeline(server.base_url, extra, **options)
    return RemoteAsrEngine(pipeline, settings, RemoteCaller(pipeline.engine, settings,
                                                            sleep=lambda _: None))


def test_ten_minutes_through_a_30_second_engine_is_continuous(vllm: FakeOpenAi):
    progress: list[float] = []
    output = engine(vllm).transcribe(talk(600), language=None, word_timestamps=True,
                                     on_progress=progress.append)
    pieces = [seconds for seconds, _, _ in vllm.audio_requests]
    assert len(pieces) >= 20 and max(pieces) <= 30 and sum(pieces) == pytest.approx(600)
    words = [word for segment in output.segments for word in segment.words]
    starts = [word.start for word in words]
    assert starts == sorted(starts), "times go backwards"
    assert max(b - a for a, b in itertools.pairwise(starts)) < 2.0, "a gap: a piece misplaced"
    assert starts[0] == pytest.approx(0.1) and words[-1].end > 598
    assert all(0 <= w.start <= w.end <= 600 for w in words)
    assert output.language == "en"  # "english", as OpenAI's verbose_json says it
    assert progress[-1] == 1.0 and progress == sorted(progress)
    fields = vllm.audio_requests[0][1]
    assert fields["model"] == ["mistralai/Voxtral-Mini-3B-2507"]
    assert fields["timestamp_granularities[]"] == ["word", "segment"]


def test_cuts_fall_in_the_silences(vllm: FakeOpenAi):
    # 29 s: a cut at the limit itself would fall inside a tone.
    engine(vllm, concurrency=1, max_piece_seconds=29).transcribe(talk(100), language="en",
                                                                word_timestamps=True)
    assert len(vllm.audio_requests) == 4
    offset = 0.0
    for seconds, _, _ in vllm.audio_requests[:-1]:
        offset += seconds
        assert offset % 3.0 > 2.5, f"cut at {offset:.2f} s is inside a tone"


def test_transient_failures_are_retried(vllm: FakeOpenAi):
    vllm.script = ["503", "429"]
    output = engine(vllm).transcribe(talk(20), language="en", word_timestamps=True)
    assert len(vllm.audio_requests) == 3
    assert output.segments and output.segments[0].words[0].word == "w0"


@pytest.mark.parametrize(("script", "code", "tries"), [
    (["503"] * 3, "engine_unavailable", 3),
    (["429"] * 3, "engine_rate_limited", 3),
    (["slow"] * 3, "engine_timeout", 3),
    (["malformed"] * 3, "engine_bad_answer", 3),
    (["401"], "engine_rejected", 1),
])
def test_failures_name_the_engine_and_what_to_do(vllm: FakeOpenAi, script, code, tries):
    vllm.script = list(script)
    with pytest.raises(EngineFailed) as failure:
        engine(vllm).transcribe(talk(10), language="en", word_timestamps=True)
    assert failure.value.code == code
    assert len(vllm.audio_requests) == tries
    message = failure.value.message
    assert "pipeline 'remote'" in message and vllm.base_url in message
    assert "Nothing was charged" in message


def test_a_too_long_piece_is_reported_with_the_engine_words(vllm: FakeOpenAi):
    """An operator who sets max_piece_seconds above what the engine accepts is told so."""
    with pytest.raises(EngineFailed) as failure:
        engine(vllm, max_piece_seconds=45).transcribe(talk(40), language="en",
                                                     word_timestamps=True)
    assert failure.value.code == "engine_rejected"
    assert "Maximum clip duration (30s) exceeded" in failure.value.message
    assert "max_piece_seconds" in failure.value.message
    assert len(vllm.audio_requests) == 1  # a 4xx is not retried


def test_the_address_guard_applies_unless_the_operator_allows_the_host(vllm: FakeOpenAi):
    with pytest.raises(EngineFailed) as failure:
        engine(vllm, Settings()).transcribe(talk(5), language="en", word_timestamps=True)
    assert failure.value.code == "engine_url_refused"
    assert "allow_private_network" in failure.value.message
    assert vllm.audio_requests == []  # nothing was sent
    output = engine(vllm, Settings(), extra="allow_private_network = true").transcribe(
        talk(5), language="en", word_timestamps=True)
    assert output.segments


def test_the_key_comes_from_the_named_variable(vllm: FakeOpenAi, monkeypatch):
    monkeypatch.setenv("TEST_ENGINE_KEY", "sk-remote-secret")
    engine(vllm, extra='api_key_env = "TEST_ENGINE_KEY"').transcribe(
        talk(5), language="en", word_timestamps=False)
    _seconds, fields, authorization = vllm.audio_requests[0]
    assert authorization == "Bearer sk-remote-secret"
    assert "timestamp_granularities[]" not in fields and fields["language"] == ["en"]


def test_a_text_only_engine_gives_one_utterance_a_piece(vllm: FakeOpenAi):
    """response_format = "json" (what some servers answer for speech LLMs)."""
    output = engine(vllm, extra='response_format = "json"').transcribe(
        talk(50), language="en", word_timestamps=True)
    fields = vllm.audio_requests[0][1]
    assert fields["response_format"] == ["json"] and "timestamp_granularities[]" not in fields
    assert len(output.segments) == 2 and not output.segments[0].words
    assert output.segments[0].start == 0.0
    assert output.segments[1].start == output.segments[0].end  # continuous


def test_answers_of_every_shape_are_read():
    text_only = parse_answer({"text": "hello there"}, duration=4.0)
    assert [(s.start, s.end, s.text, s.words) for s in text_only.segments] == [
        (0.0, 4.0, "hello there", ())]
    nested = parse_answer({"text": "a b", "language": "de", "segments": [
        {"start": 0, "end": 1, "text": "a", "words": [{"word": "a", "start": 0.1, "end": 0.4}]},
        {"start": 1, "end": 2, "text": "b"}],
        "words": [{"word": "b", "start": 1.2, "end": 1.5, "probability": 0.8}]}, 2.0)
    assert nested.language == "de"
    assert [[w.word for w in s.words] for s in nested.segments] == [["a"], ["b"]]
    for bad in ({"segments": []}, {"text": "x", "segments": [{"start": "zero"}]},
                {"text": "x", "words": [{"start": 1}]}, ["text"]):
        with pytest.raises(ValueError):
            parse_answer(bad, 1.0)
