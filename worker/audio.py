"""Decoding: any media file to 16 kHz mono float32 samples, with PyAV.

What a file is, is decided by decoding it, not by its name or Content-Type. The steps mirror
faster-whisper's own ``decode_audio`` (group frames, resample to s16 mono 16 kHz, scale to
[-1, 1]) so that the service hears exactly what faster-whisper would hear from the same file.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from worker.errors import EmptyMedia, NotAudio

SAMPLE_RATE = 16_000
#: Frames are resampled in groups of this many samples (as faster-whisper does).
_GROUP_SAMPLES = 500_000


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at :data:`SAMPLE_RATE`, ready for every model of the pipeline."""

    samples: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode(path: Path) -> DecodedAudio:
    """Decode the first audio stream of ``path``; :class:`NotAudio` / :class:`EmptyMedia`."""
    if path.stat().st_size == 0:
        raise EmptyMedia("The file is empty (0 bytes): check that the URL points at the file "
                         "itself.")
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise NotAudio("The file has no audio track: send an audio file, or a video "
                               "that has sound.")
            frames = _skip_invalid(container.decode(audio=0))
            for frame in _resample(_group(frames), resampler):
                chunks.append(frame.to_ndarray().reshape(-1))
    except (av.error.InvalidDataError, av.error.EOFError, av.error.DecoderNotFoundError,
            av.error.DemuxerNotFoundError) as exc:
        raise NotAudio("The file is not audio or video that can be decoded "
                       f"({type(exc).__name__}): check the URL points at a media file.") from exc
    except av.error.FFmpegError as exc:
        raise NotAudio(f"The file could not be decoded ({exc}): it may be damaged or in a "
                       "format that is not supported.") from exc
    finally:
        del resampler
        gc.collect()  # PyAV's resampler frees its buffers only on collection
    samples = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32)
    if samples.size == 0:
        raise EmptyMedia("The file decoded to no sound at all: check it plays.")
    return DecodedAudio(samples=samples / 32768.0)


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
