"""``worker.speech.audio.decode``: any media file to the 16 kHz mono samples faster-whisper
would hear."""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from faster_whisper import decode_audio

from tests.support import media_files
from tests.support.paths import FIXTURES
from worker.errors import AudioTooLong, EmptyMedia, MediaError, NotAudio
from worker.speech.audio import SAMPLE_RATE, DecodedAudio, decode

FIXTURES = FIXTURES
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


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two signals over their common length."""
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    return decode(FIXTURES / "jfk.flac").samples


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the media files a test module builds from jfk.flac."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def surround(built: Path) -> DecodedAudio:
    return decode(media_files.surround_flac(built / "surround.flac"))


@pytest.mark.parametrize("build", [media_files.video_with_audio, media_files.surround_flac])
def test_built_files_decode_exactly_as_faster_whisper_hears_them(tmp_path: Path,
                                                                 build: Callable) -> None:
    """Video and 5.1 too: the same samples as faster_whisper.decode_audio, bit for bit."""
    path = build(tmp_path / "media")
    assert np.array_equal(decode(path).samples, decode_audio(str(path), SAMPLE_RATE))


def test_video_yields_its_sound_track(tmp_path: Path, jfk: np.ndarray) -> None:
    """An MP4 whose first stream is video decodes to its AAC sound: 11 s of the recording
    (AAC is lossy, so the samples correlate rather than match)."""
    audio = decode(media_files.video_with_audio(tmp_path / "talk.mp4"))
    assert audio.duration_s == pytest.approx(11.0, abs=0.05)
    assert (audio.channel_count, audio.channel_layout) == (2, "stereo")
    assert correlation(audio.samples, jfk) > 0.99


def test_video_without_sound_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(NotAudio) as caught:
        decode(media_files.video_without_audio(tmp_path / "silent.mp4"))
    assert "video without a sound track" in caught.value.message


@pytest.mark.parametrize("build", [
    media_files.text_file, media_files.web_page, media_files.random_bytes, media_files.png_image,
], ids=["text", "web-page", "random-bytes", "png-image"])
@pytest.mark.parametrize("name", ["notes.txt", "source"])
def test_what_is_not_media_is_not_audio(tmp_path: Path, build: Callable, name: str) -> None:
    """Text, a web page, noise bytes and a picture (which FFmpeg opens as a one-frame video,
    and a .txt as an ANSI-art video) are all "not audio or video", never "a silent video",
    whatever the file's name."""
    with pytest.raises(NotAudio) as caught:
        decode(build(tmp_path / name))
    assert "not audio or video that can be decoded" in caught.value.message
    assert "sound track" not in caught.value.message


def test_six_channels_are_mixed_and_each_stays_reachable(surround: DecodedAudio,
                                                         jfk: np.ndarray) -> None:
    """A 5.1 file with speech in the centre: the models get a mono mix that carries the
    speech; channel(FC) is the speech itself, and a silent channel is silent."""
    assert (surround.channel_count, surround.channel_layout) == (6, "5.1")
    assert surround.duration_s == pytest.approx(11.0, abs=0.01)
    assert float(np.sqrt(np.mean(surround.samples ** 2))) > 0.01
    assert correlation(surround.samples, jfk) > 0.99
    centre = surround.channel(media_files.CENTRE)
    assert centre.dtype == np.float32 and centre.shape == surround.samples.shape
    assert correlation(centre, jfk) > 0.99
    for index in (0, 1, 3, 4, 5):
        assert float(np.abs(surround.channel(index)).max()) == 0.0


@pytest.mark.parametrize("index", [6, -1])
def test_a_channel_that_does_not_exist_is_an_index_error(surround: DecodedAudio,
                                                         index: int) -> None:
    with pytest.raises(IndexError, match=r"6 channels \(5\.1\), numbered 0 to 5"):
        surround.channel(index)


def test_channels_of_a_stereo_file_are_each_side(tmp_path: Path) -> None:
    """channel(0) and channel(1) are left and right at 16 kHz; a mono file's only channel is
    exactly its samples."""
    rng = np.random.default_rng(3)
    left = (rng.standard_normal(SAMPLE_RATE) * 3000).astype(np.int16)
    right = (rng.standard_normal(SAMPLE_RATE) * 3000).astype(np.int16)
    stereo = decode(write_wav(tmp_path / "lr.wav", np.stack([left, right], axis=1),
                              SAMPLE_RATE))
    assert np.array_equal(stereo.channel(0), left.astype(np.float32) / 32768.0)
    assert np.array_equal(stereo.channel(1), right.astype(np.float32) / 32768.0)
    assert (stereo.channel_count, stereo.channel_layout) == (2, "stereo")
    mono = decode(FIXTURES / "sample.wav")
    assert (mono.channel_count, mono.channel_layout) == (1, "mono")
    assert np.array_equal(mono.channel(0), mono.samples)


def test_declared_length_over_the_limit_fails_before_decoding(tmp_path: Path) -> None:
    """jfk.flac (11 s of audio) declaring 10 hours is refused on its declaration alone:
    decoding its 11 s could never pass a 1-minute limit, so nothing was decoded. The message
    says how long, the limit, and what to do."""
    path = tmp_path / "lies.flac"
    path.write_bytes((FIXTURES / "jfk.flac").read_bytes())
    media_files.declare_flac_length(path, 10 * 3600 * 44_100)
    with pytest.raises(AudioTooLong) as caught:
        decode(path, max_duration_s=60)
    assert caught.value.code == "audio_too_long"
    assert caught.value.message.startswith("The audio is 10 hours long; this service accepts "
                                           "at most 1 minute.")
    assert "Split the file" in caught.value.message
    assert "VOXHOOK_MAX_AUDIO_MINUTES" in caught.value.message


def test_audio_just_over_the_limit_is_refused_and_under_it_decodes(tmp_path: Path) -> None:
    path = media_files.beeps_flac(tmp_path / "long.flac", seconds=61)
    with pytest.raises(AudioTooLong, match="1 minute 1 second long; this service accepts at "
                       "most 1 minute"):
        decode(path, max_duration_s=60)
    assert decode(path, max_duration_s=61).duration_s == pytest.approx(61.0, abs=0.001)
    assert decode(path).duration_s == pytest.approx(61.0, abs=0.001)


def _bytes_read() -> int:
    """Bytes this process has read through system calls (Linux)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_length_not_declared_is_stopped_by_counting_samples(tmp_path: Path) -> None:
    """5 minutes of FLAC that declares no length (as a streaming encoder writes it), limit
    1 minute: decoding stops once a minute has been counted, having read well under half of
    the file (FFmpeg reads it in 32 KB blocks)."""
    path = media_files.declare_flac_length(
        media_files.beeps_flac(tmp_path / "stream.flac", seconds=300), 0)
    with av.open(str(path)) as container:  # the file itself says nothing of its length
        assert container.duration is None and container.streams.audio[0].duration is None
    before = _bytes_read()
    with pytest.raises(AudioTooLong) as caught:
        decode(path, max_duration_s=60)
    assert _bytes_read() - before < path.stat().st_size / 2
    assert caught.value.message.startswith("The audio is longer than 1 minute; this service "
                                           "accepts at most 1 minute.")
    assert decode(path).duration_s == pytest.approx(300.0, abs=0.001)  # with no limit


def test_truncated_flac_decodes_its_share_and_says_so(tmp_path: Path, jfk: np.ndarray,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The first half of jfk.flac's bytes decodes to about half of its 11 s, the same samples
    as the start of the whole file, and the log says the file looks truncated."""
    path = media_files.truncated(tmp_path / "half.flac", 0.5)
    with caplog.at_level(logging.WARNING, logger="worker.speech.audio"):
        audio = decode(path)
    assert audio.duration_s == pytest.approx(5.5, abs=0.6)
    head = len(audio.samples) - SAMPLE_RATE // 10  # the resampler's flush shapes the tail
    assert np.allclose(audio.samples[:head], jfk[:head], atol=2 / 32768)
    assert f"decoded {audio.duration_s:.1f} s of a file that declares 11.0 s: it looks " \
           "truncated" in caplog.text


def test_flac_header_alone_is_a_media_error(tmp_path: Path) -> None:
    """The signature and STREAMINFO of a FLAC, with no audio frame: refused, not a crash."""
    path = tmp_path / "header.flac"
    path.write_bytes((FIXTURES / "jfk.flac").read_bytes()[:42])
    with pytest.raises((NotAudio, EmptyMedia)):
        decode(path)
