"""Cutting long audio into pieces a remote engine accepts, at silences. Pure functions.

A remote engine may accept only so much audio at once (vLLM serving Voxtral or Qwen3-ASR is
commonly set up for 30 s; OpenAI takes 25 MB). Audio longer than the engine's
``max_piece_seconds`` is cut into pieces no longer than that, each cut in the quietest stretch
of the last seconds before the limit, so that words are not cut in half. The quietness of
a stretch is its mean energy over :data:`QUIET_WINDOW_S`: a pause between sentences beats
the short dip between two syllables.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
#: Energy is measured per frame of this many seconds.
FRAME_S = 0.02
#: A cut goes in the middle of the quietest stretch this long.
QUIET_WINDOW_S = 0.3
#: Frames this close (relatively) to the quietest count as quiet as it.
QUIET_TOLERANCE = 0.05
#: How far back from the limit a cut is looked for, at most (and at most a third of a piece).
SEARCH_S = 10.0


def split_points(samples: np.ndarray, max_piece_s: float,
                 sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """``(start, end)`` sample indexes of consecutive pieces covering all of ``samples``,
    each at most ``max_piece_s`` long, cut at the quietest moment near each limit."""
    total = len(samples)
    limit = int(max_piece_s * sample_rate)
    if total <= limit:
        return [(0, total)]
    frame = max(int(FRAME_S * sample_rate), 1)
    energy = frame_energy(samples, frame)
    window = max(int(QUIET_WINDOW_S / FRAME_S), 1)
    smoothed = np.convolve(energy, np.ones(window) / window, mode="same")
    search = max(int(min(SEARCH_S, max_piece_s / 3) * sample_rate), frame)
    pieces: list[tuple[int, int]] = []
    start = 0
    while total - start > limit:
        latest = start + limit
        first_frame = (latest - search) // frame + 1  # frames wholly inside (start, latest]
        last_frame = latest // frame - 1
        if last_frame < first_frame:
            cut = latest
        else:
            stretch = smoothed[first_frame:last_frame + 1]
            # The latest of the quietest frames: pieces stay as long as they may.
            quiet = np.flatnonzero(stretch <= stretch.min() * (1 + QUIET_TOLERANCE) + 1e-12)
            quietest = first_frame + int(quiet[-1])
            cut = min(quietest * frame + frame // 2, latest)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    return pieces


def frame_energy(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of each whole frame (a last partial frame counts as a frame)."""
    count = -(-len(samples) // frame)
    padded = np.zeros(count * frame, dtype=np.float32)
    padded[:len(samples)] = samples
    return np.mean(padded.reshape(count, frame) ** 2, axis=1)
