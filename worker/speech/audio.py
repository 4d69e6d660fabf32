"""Decoding: any media file to 16 kHz mono float32 samples, with PyAV.

What a file is, is decided by decoding it, not by its name or Content-Type. The steps mirror
faster-whisper's own ``decode_audio`` (group frames, resample to s16 mono 16 kHz, scale to
[-1, 1]) so that the service hears exactly what faster-whisper would hear from the same file.

- Video: the best audio stream (FFmpeg's choice, as the ``ffmpeg`` command makes it) is the
  one decoded, and the demuxer discards every other stream's packets, so no video frame is
  ever decoded. For a file with one audio stream that is faster-whisper's ``audio=0``.
- Channels: the models hear FFmpeg's standard downmix to mono (its resampler's matrix). The
  channels stay reachable: :meth:`DecodedAudio.channel` decodes one of them again from the
  source file when asked, rather than keeping six float copies of a long 5.1 file in memory.
- Length limit: the declared duration is checked before anything is decoded (a 10-hour file
  fails at once), and the decoded frames are counted as they come, stopping as soon as they
  pass the limit, because a declared duration can be absent or wrong. An over-long file is
  never decoded whole into memory. A declared length over the limit is trusted: checking it
  is free and it almost never overstates (FFmpeg's estimate from the bit rate of a VBR MP3
  without a Xing header is the rare exception).
- Truncated files (cut short where they were made: a recorder that crashed, half a FLAC
  copied): the part that is there is decoded and transcribed, as FFmpeg and faster-whisper
  do; refusing would throw away audio the user can use. When clearly less decodes than the
  container declares, it is logged. Only a file where nothing decodes is an error. A
  *download* cut short is another failure, found by the fetcher before decoding.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from worker.errors import AudioTooLong, EmptyMedia, NotAudio

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
#: Frames are resampled in groups of this many samples (as faster-whisper does).
_GROUP_SAMPLES = 500_000
#: FFmpeg demuxers that show pictures or text as a "video" stream: such a file is no video.
_STILL_FORMATS = ("image2", "tty")
#: Layouts FFmpeg leaves unnamed (a WAV without a channel mask) that still have a plain name.
_UNORDERED = {"1 channels": "mono", "2 channels": "stereo"}


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at :data:`SAMPLE_RATE`, ready for every model of the pipeline, and where
    they came from, so that single channels can be decoded when a step needs them."""

    samples: np.ndarray
    #: Channels of the decoded stream, and FFmpeg's name for their layout ("mono", "5.1").
    channel_count: int
    channel_layout: str
    source: Path

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def channel(self, index: int) -> np.ndarray:
        """Channel ``index`` alone (in the layout's order; for "5.1": FL FR FC LFE BL BR) as
        16 kHz float32, decoded now from :attr:`source`, which must still exist."""
        if not 0 <= index < self.channel_count:
            raise IndexError(f"There is no channel {index}: the audio has {self.channel_count} "
                             f"channels ({self.channel_layout}), numbered 0 to "
                             f"{self.channel_count - 1}.")
        if not self.source.exists():
            raise FileNotFoundError(f"{self.source} is gone: channels are decoded from the "
                                    "source file, so ask for them before it is deleted.")
        with _opened(self.source) as (container, stream):
            rows = [pcm[index] for pcm in _pcm(container, stream, layout=None)]
        return _as_float(rows)


def decode(path: Path, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode the best audio stream of ``path`` to mono; no longer than ``max_duration_s``.

    Raises :class:`EmptyMedia`, :class:`NotAudio` or :class:`AudioTooLong`.
    """
    if path.stat().st_size == 0:
        raise EmptyMedia("The file is empty (0 bytes): check that the URL points at the file "
                         "itself.")
    with _opened(path) as (container, stream):
        declared = _declared_s(container, stream)
        if max_duration_s is not None and declared is not None and declared > max_duration_s:
            raise AudioTooLong(_too_long(max_duration_s, declared))
        chunks = [pcm.reshape(-1) for pcm in _pcm(container, stream, "mono", max_duration_s)]
        layout = stream.layout
    samples = _as_float(chunks)
    if samples.size == 0:
        raise EmptyMedia("The file decoded to no sound at all: check it plays.")
    decoded = samples.size / SAMPLE_RATE
    if declared is not None and decoded < 0.9 * declared and declared - decoded >= 1.0:
        log.warning("decoded %.1f s of a file that declares %.1f s: it looks truncated",
                    decoded, declared)
    return DecodedAudio(samples=samples, channel_count=layout.nb_channels,
                        channel_layout=_UNORDERED.get(layout.name, layout.name), source=path)


@contextmanager
def _opened(path: Path) -> Iterator[tuple[av.container.InputContainer, av.AudioStream]]:
    """The open file and its best audio stream; every FFmpeg failure becomes NotAudio."""
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.best("audio")
            if stream is None:
                raise NotAudio(_no_audio_message(container))
            for other in container.streams:
                if other is not stream:
                    other.discard = av.stream.Discard.all
            yield container, stream
    except (av.error.InvalidDataError, av.error.EOFError, av.error.DecoderNotFoundError,
            av.error.DemuxerNotFoundError) as exc:
        raise NotAudio("The file is not audio or video that can be decoded "
                       f"({type(exc).__name__}): check the URL points at a media file.") from exc
    except av.error.FFmpegError as exc:
        raise NotAudio(f"The file could not be decoded ({exc}): it may be damaged or in a "
                       "format that is not supported.") from exc
    finally:
        gc.collect()  # PyAV's resampler frees its buffers only on collection


def _no_audio_message(container: av.container.InputContainer) -> str:
    is_still = container.format.name in _STILL_FORMATS or container.format.name.endswith("_pipe")
    if container.streams.video and not is_still:
        return ("The file is a video without a sound track: there is nothing to transcribe. "
                "Send a video that has sound, or its audio.")
    return ("The file is not audio or video that can be decoded: it has no sound. Check the "
            "URL points at a media file.")


def _pcm(container: av.container.InputContainer, stream: av.AudioStream, layout: str | None,
         max_duration_s: float | None = None) -> Iterator[np.ndarray]:
    """The stream as int16 arrays at 16 kHz, shape (channels, samples): mixed to ``layout``,
    or every channel as it is (planar, one row each) when ``layout`` is None."""
    resampler = av.audio.resampler.AudioResampler(
        format="s16" if layout else "s16p", layout=layout, rate=SAMPLE_RATE)
    frames = _skip_invalid(container.decode(stream))
    if max_duration_s is not None:
        frames = _bounded(frames, max_duration_s)
    for frame in _resample(_group(frames), resampler):
        yield frame.to_ndarray()


def _as_float(chunks: list[np.ndarray]) -> np.ndarray:
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return samples.astype(np.float32) / 32768.0


def _declared_s(container: av.container.InputContainer, stream: av.AudioStream
                ) -> float | None:
    """The length the file declares for the stream (or, failing that, for itself)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _bounded(frames: Iterator[av.AudioFrame], max_duration_s: float
             ) -> Iterator[av.AudioFrame]:
    """Pass frames on until their total length passes ``max_duration_s``, then fail."""
    samples = 0
    for frame in frames:
        samples += frame.samples  # whole samples: a sum of float seconds would drift
        if samples > max_duration_s * frame.sample_rate:
            raise AudioTooLong(_too_long(max_duration_s))
        yield frame


def _too_long(limit_s: float, declared_s: float | None = None) -> str:
    length = (f"The audio is {_spoken(math.ceil(declared_s))} long" if declared_s is not None
              else f"The audio is longer than {_spoken(limit_s)}")
    return (f"{length}; this service accepts at most {_spoken(limit_s)}. Split the file into "
            "shorter parts, or ask the operator to raise VOXHOOK_MAX_AUDIO_MINUTES.")


def _spoken(seconds: float) -> str:
    """A length as people say it: "4 hours", "1 minute 5 seconds", "2 hours 30 minutes"."""
    whole = round(seconds)
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    parts = [f"{count} {unit}{'s' if count != 1 else ''}"
             for count, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second"))
             if count]
    return " ".join(parts) or f"{seconds:.1f} seconds"


def _skip_invalid(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    """Skip frames the decoder rejects, keeping the rest of a slightly damaged file."""
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _group(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    fifo = av.audio.fifo.AudioFifo()
    for frame in frames:
        frame.pts = None  # timestamps of odd files need not be monotonic
        fifo.write(frame)
        if fifo.samples >= _GROUP_SAMPLES:
            yield fifo.read()
    if fifo.samples > 0:
        yield fifo.read()


def _resample(frames: Iterator[av.AudioFrame],
              resampler: av.audio.resampler.AudioResampler) -> Iterator[av.AudioFrame]:
    for frame in itertools.chain(frames, [None]):  # None flushes the resampler
        yield from resampler.resample(frame)
