"""The speech pipeline for one job: fetch → decode → transcribe → assemble.

Orchestration only, with no database or Redis: the job module hands in what to do and hooks
to hear about progress, and gets back the result. Diarization joins between transcribe and
assemble (its own issue), on the same decoded samples.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings
from app.netguard import Allowlist
from worker.assemble import build_result
from worker.audio import decode
from worker.fetch import download
from worker.model_cache import ModelCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """What to transcribe and how: the parts of a transcription row the pipeline needs."""

    transcription_id: str
    url: str
    pipeline_code: str
    language: str | None
    align: bool


@dataclass(frozen=True)
class PipelineOutcome:
    result: dict[str, Any]
    duration_s: float


class PipelineHooks(Protocol):
    """What the pipeline reports while it runs."""

    def on_audio(self, duration_s: float) -> None:
        """The audio is decoded and its length known (before transcription starts)."""

    def on_progress(self, fraction: float) -> None:
        """The engine has come this far (0..1) through the audio."""


def run_pipeline(spec: JobSpec, models: ModelCache, settings: Settings, allowlist: Allowlist,
                 hooks: PipelineHooks) -> PipelineOutcome:
    """Run one transcription; raises :class:`worker.errors.PipelineError` on user errors."""
    engine = models.engine(spec.pipeline_code)  # fail before downloading if it cannot run
    media_dir = settings.data_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{spec.transcription_id}-", dir=media_dir) as work:
        path = download(spec.url, Path(work) / "source", settings.fetch_limits, allowlist)
        audio = decode(path)
    log.info("transcription %s: %.2f s of audio decoded", spec.transcription_id,
             audio.duration_s)
    hooks.on_audio(audio.duration_s)
    output = engine.transcribe(audio.samples, language=spec.language,
                               word_timestamps=spec.align, on_progress=hooks.on_progress)
    result = build_result(output, audio.duration_s, with_words=spec.align)
    return PipelineOutcome(result=result, duration_s=audio.duration_s)
