"""The random Whisper model must drive faster-whisper through its real code paths.

These tests build a real model folder and run real transcriptions (no mocking): the rest
of the test-suite relies on this model to stand in for ``whisper-tiny``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, TranscriptionInfo
from tokenizers import Tokenizer

from tests.support.tiny_whisper import (
    MARKER,
    TEST_SIZE,
    VOCAB_SIZE,
    TinyWhisperSize,
    build_tiny_whisper,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"  # see its SOURCES.md
JFK = FIXTURES / "jfk.flac"  # 11 s, one speaker
SAMPLE = FIXTURES / "sample.wav"  # 30 s, a phone call, silent for the first 6.7 s

GREEDY: dict[str, Any] = {
    "beam_size": 1,
    "temperature": 0.0,
    "max_new_tokens": 48,
    "word_timestamps": True,
    "vad_filter": True,
}
"""Fast, deterministic decoding: a random model would run every temperature fallback."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Iterator[WhisperModel]:
    # Offline mode makes any attempt to reach the model hub fail instead of hanging.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield WhisperModel(str(model_dir), device="cpu", compute_type="int8")


def transcribe(
    model: WhisperModel, audio: Path, **options: Any
) -> tuple[list[Segment], TranscriptionInfo]:
    segments, info = model.transcribe(str(audio), **{**GREEDY, **options})
    return list(segments), info


def words_of(segments: list[Segment]) -> list[tuple[str, float, float]]:
    return [(w.word, w.start, w.end) for s in segments for w in s.words or []]


def test_folder_holds_what_faster_whisper_reads(model_dir: Path) -> None:
    names = {path.name for path in model_dir.iterdir()}
    assert names == {"model.bin", "config.json", "vocabulary.json", "tokenizer.json", MARKER}
    config = json.loads((model_dir / "config.json").read_text())
    assert len(config["lang_ids"]) == 99
    assert config["alignment_heads"] == [[1, 0], [1, 1]]


def test_build_is_deterministic_idempotent_and_keyed_on_seed(tmp_path: Path) -> None:
    first = build_tiny_whisper(tmp_path / "a", TEST_SIZE, seed=0)
    second = build_tiny_whisper(tmp_path / "b", TEST_SIZE, seed=0)
    for name in ("model.bin", "tokenizer.json", "config.json", "vocabulary.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    built_at = (first / "model.bin").stat().st_mtime_ns
    assert build_tiny_whisper(first, TEST_SIZE, seed=0) == first
    assert (first / "model.bin").stat().st_mtime_ns == built_at

    build_tiny_whisper(first, TEST_SIZE, seed=1)
    assert (first / "model.bin").read_bytes() != (second / "model.bin").read_bytes()
    assert not list(tmp_path.glob(".*")), "staging folders must be cleaned up"


def test_rejects_a_width_the_heads_do_not_divide(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_whisper(tmp_path, TinyWhisperSize(width=64, heads=3))


def test_tokenizer_round_trips_text_and_uses_whisper_ids(model_dir: Path) -> None:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    encoding = tokenizer.encode("hello world", add_special_tokens=False)
    assert tokenizer.decode(encoding.ids) == "hello world"

    assert tokenizer.get_vocab_size() == VOCAB_SIZE == 51865
    expected = {
        "Ġ": 220,
        "": 50256,
        "<|endoftext|>": 50257,
        "<|startoftranscript|>": 50258,
        "<|en|>": 50259,
        "<|de|>": 50261,
        "<|su|>": 50357,
        "<|translate|>": 50358,
        "<|transcribe|>": 50359,
        "<|nocaptions|>": 50362,
        "<|notimestamps|>": 50363,
        "<|0.00|>": 50364,
        "<|30.00|>": 51864,
    }
    assert {token: tokenizer.token_to_id(token) for token in expected} == expected
    vocabulary = json.loads((model_dir / "vocabulary.json").read_text())
    assert vocabulary == [tokenizer.id_to_token(i) for i in range(VOCAB_SIZE)]


def test_loads_offline_as_a_multilingual_model(model: WhisperModel) -> None:
    assert model.model.is_multilingual


def test_transcribes_with_words_and_detects_a_language(model: WhisperModel) -> None:
    segments, info = transcribe(model, JFK)

    assert segments
    assert any(segment.words for segment in segments)
    assert len(info.language) == 2
    assert model.hf_tokenizer.token_to_id(f"<|{info.language}|>") is not None
    assert info.duration == pytest.approx(11.0, abs=0.1)


@pytest.mark.parametrize("language", ["de", "fr"])
def test_a_given_language_is_kept(model: WhisperModel, language: str) -> None:
    segments, info = transcribe(model, JFK, language=language)

    assert info.language == language
    assert info.language_probability == 1
    assert segments


def test_transcribes_a_long_conversation(model: WhisperModel) -> None:
    segments, info = transcribe(model, SAMPLE)

    assert info.duration == pytest.approx(30.0, abs=0.1)
    assert words_of(segments)


def test_same_settings_give_identical_words_and_times(model: WhisperModel) -> None:
    first, _ = transcribe(model, JFK)
    second, _ = transcribe(model, JFK)

    assert words_of(first)
    assert words_of(first) == words_of(second)
    assert [s.text for s in first] == [s.text for s in second]
