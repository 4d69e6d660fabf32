"""A loaded model wrapped to remember the sample arrays handed to it.

Used where a test or benchmark must show that a job decodes its file once: the speech model
and the diarizer should receive the very same array object. Given to ``ModelCache`` through
its ``load`` / ``load_diarizer`` parameters, so nothing in the worker is patched.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SampleRecorder:
    """Delegates ``transcribe`` / ``diarize`` (``diarize_with_voices``) to ``model``, appending
    the samples to ``seen``."""

    def __init__(self, model: Any, seen: list[np.ndarray]) -> None:
        self.model, self.seen = model, seen

    def transcribe(self, samples: np.ndarray, **kwargs: Any) -> Any:
        self.seen.append(samples)
        return self.model.transcribe(samples, **kwargs)

    def diarize(self, samples: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(samples)
        return self.model.diarize(samples, *args, **kwargs)

    def diarize_with_voices(self, samples: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(samples)
        return self.model.diarize_with_voices(samples, *args, **kwargs)

    def embed(self, samples: np.ndarray) -> Any:
        return self.model.embed(samples)
