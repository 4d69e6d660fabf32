"""``worker.audio.decode``: any media file to the 16 kHz mono samples faster-whisper would hear."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from worker.audio import SAMPLE_RATE, DecodedAudio, decode
from worker.errors import EmptyMedia, MediaError, NotAudio

FIXTURES = Path(__file__).parent / "fixtures"
#: Real lengths of the fixtures (SOURCES.md).
DURATIONS = {"jfk.flac": 11.0, "sample.wav": 30.0}


def write_wav(path: Path, frames: np.ndarray, rate: int) -> Path:
    """Write int16 ``frames`` (shape samples x channels) as a WAV with the stdlib."""
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(frames.shape[1])
        sink.setsampwidth(2)
        sink.setframerate(rate)
        sink.writeframes(np.ascontiguousarray(frames, dtype="<i2").tobytes())
    return path


@pytest.mark.parametrize("name", sorted(DURATIONS))
def test_samples_are_exactly_faster_whispers(name: str) -> None:
    """Our decoder yields bit-for-bit the samples of faster_whisper.decode_audio."""
    ours = decode(FIXTURES / name)
    theirs = decode_audio(str(FIXTURES / name), sampling_rate=SAMPLE_RATE)
    assert isinstance(ours, DecodedAudio)
    assert ours.samples.dtype == np.float32 and ours.samples.ndim == 1
    assert np.array_equal(ours.samples, theirs)
    assert ours.duration_s == pytest.approx(DURATIONS[name], abs=0.01)
    assert float(np.abs(ours.samples).max()) <= 1.0


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    """A text file (whatever its name) is refused with NotAudio."""
    path = tmp_path / "speech.mp3"
    path.write_text("This is a text file, not audio.\n" * 20)
    with pytest.raises(NotAudio) as caught:
        decode(path)
    assert caught.value.code == "not_audio"


def test_empty_file_is_empty_media(tmp_path: Path) -> None:
    """A zero-byte file is EmptyMedia, not a decoder error."""
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyMedia) as caught:
        decode(path)
    assert "empty" in caught.value.message


def test_wav_header_alone_is_a_media_error(tmp_path: Path) -> None:
    """A WAV cut inside its header is refused with a MediaError, not an unhandled crash."""
    path = tmp_path / "header.wav"
    path.write_bytes((FIXTURES / "sample.wav").read_bytes()[:30])
    with pytest.raises(MediaError):
        decode(path)


def test_truncated_wav_decodes_the_part_that_is_there(tmp_path: Path) -> None:
    """The first 40% of sample.wav decodes (header lies about the length) to its first ~12 s,
    sample for sample the start of the whole file."""
    data = (FIXTURES / "sample.wav").read_bytes()
    path = tmp_path / "truncated.wav"
    path.write_bytes(data[: int(len(data) * 0.4)])
    audio = decode(path)  # decodes: a truncated PCM WAV is not an error
    assert audio.duration_s == pytest.approx(0.4 * DURATIONS["sample.wav"], abs=0.01)
    whole = decode(FIXTURES / "sample.wav").samples
    assert np.array_equal(audio.samples, whole[: len(audio.samples)])


def test_truncated_flac_decodes_to_a_shorter_duration(tmp_path: Path) -> None:
    """A FLAC cut short decodes what it has (shorter than the original) without crashing."""
    data = (FIXTURES / "jfk.flac").read_bytes()
    path = tmp_path / "truncated.flac"
    path.write_bytes(data[: len(data) // 3])
    audio = decode(path)
    assert 0.5 < audio.duration_s < DURATIONS["jfk.flac"] * 0.6


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100])
def test_stereo_wav_becomes_mono_of_the_right_length(tmp_path: Path, rate: int) -> None:
    """A 2-channel WAV decodes to one channel, resampled to 16 kHz, 2 s long; identical
    channels give the mono signal itself."""
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal(rate * 2) * 3000).astype(np.int16)
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([signal, signal], axis=1), rate)
    mono = write_wav(tmp_path / "mono.wav", signal[:, None], rate)
    decoded = decode(stereo)
    assert decoded.samples.ndim == 1
    assert len(decoded.samples) == pytest.approx(2 * SAMPLE_RATE, abs=1)
    assert decoded.duration_s == pytest.approx(2.0, abs=0.001)
    assert np.array_equal(decoded.samples, decode(mono).samples)
    if rate == SAMPLE_RATE:
        assert np.array_equal(decoded.samples, signal.astype(np.float32) / 32768.0)


def test_stereo_channels_are_mixed_not_one_picked(tmp_path: Path) -> None:
    """Opposite channels cancel in the mono mix: the decoder mixes both channels down."""
    rng = np.random.default_rng(3)
    left = (rng.standard_normal(SAMPLE_RATE) * 3000).astype(np.int16)
    path = write_wav(tmp_path / "opposite.wav", np.stack([left, -left], axis=1), SAMPLE_RATE)
    samples = decode(path).samples
    assert len(samples) == SAMPLE_RATE
    assert float(np.abs(samples).max()) <= 2 / 32768  # silence, give or take rounding
