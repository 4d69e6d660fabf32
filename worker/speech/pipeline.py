"""The speech pipeline for one job: fetch → decode → transcribe → diarize → assemble →
analyse (when the request asked for AI analyses).

Orchestration only, with no database or Redis: the job module hands in what to do and hooks
to hear about progress, and gets back the result. The file is decoded once; the same samples
in memory go to the speech model and to the diarizer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings
from app.transcriptions.engine_options import EngineOptions
from worker.analysis.runner import run_analyses
from worker.media.store import MediaRef, MediaStore
from worker.speech.assemble import build_result
from worker.speech.audio import decode
from worker.speech.diarization import SpeakerConstraints
from worker.speech.model_cache import ModelCache
from worker.speech.voices import match_voices, reference_samples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """What to transcribe and how: the parts of a transcription row the pipeline needs."""

    transcription_id: str
    #: The media: a URL to fetch, or an upload (its id and storage key).
    url: str | None
    pipeline_code: str
    language: str | None
    align: bool
    diarize: bool = False
    speakers: SpeakerConstraints = field(default_factory=SpeakerConstraints)
    upload_id: str | None = None
    upload_key: str | None = None
    #: Task, prompt, temperature, known speakers (the OpenAI surface sets them).
    options: EngineOptions = field(default_factory=EngineOptions)

    @property
    def media(self) -> MediaRef:
        return MediaRef(self.transcription_id, url=self.url, upload_id=self.upload_id,
                        upload_key=self.upload_key)


#: Share of the progress bar the speech model fills when a diarizer runs after it.
ASR_SHARE_WHEN_DIARIZING = 0.7


@dataclass(frozen=True)
class PipelineOutcome:
    result: dict[str, Any]
    duration_s: float
    #: Seconds spent per stage (fetch, decode, asr, diarization, assembly), in that order.
    timings: dict[str, float] = field(default_factory=dict)


class PipelineHooks(Protocol):
    """What the pipeline reports while it runs."""

    def on_audio(self, duration_s: float) -> None:
        """The audio is decoded and its length known (before transcription starts)."""

    def on_progress(self, fraction: float) -> None:
        """The engine has come this far (0..1) through the audio."""

    def on_segment(self, start: float, end: float, text: str) -> None:
        """The engine has decoded one more segment (streamed to waiting clients)."""

    def on_stage(self, stage: str) -> None:
        """A stage begins (``fetch``, ``decode``, ``asr``, ``diarization``, ``assembly``,
        ``analysis``): where the worker holds a job on an operator's request."""


def run_pipeline(spec: JobSpec, models: ModelCache, settings: Settings, media: MediaStore,
                 hooks: PipelineHooks, work_dir: Path) -> PipelineOutcome:
    """Run one transcription; raises :class:`worker.errors.PipelineError` on user errors.

    The media is fetched into ``work_dir``, which the caller removes when the job ends (the
    decoded audio reads single channels back from the file on demand).
    """
    # Fail before downloading when a model this job needs cannot run.
    engine = models.engine(spec.pipeline_code)
    diarizer = models.diarizer(spec.pipeline_code) if spec.diarize else None
    stages = _Stopwatch(getattr(hooks, "on_stage", None))
    with stages("fetch"):
        path = media.obtain(spec.media, work_dir)
    with stages("decode"):
        audio = decode(path, max_duration_s=settings.media_limits.max_audio_s)
    log.info("transcription %s: %.2f s of audio decoded (%d channel(s))",
             spec.transcription_id, audio.duration_s, audio.channel_count)
    hooks.on_audio(audio.duration_s)
    asr_share = ASR_SHARE_WHEN_DIARIZING if diarizer else 1.0
    with_words = spec.align or spec.diarize  # speakers are assigned word by word
    with stages("asr"):
        output = engine.transcribe(audio.samples, language=spec.language,
                                   word_timestamps=with_words,
                                   on_progress=_scaled(hooks.on_progress, 0.0, asr_share),
                                   on_segment=getattr(hooks, "on_segment", None),
                                   task=spec.options.task,
                                   initial_prompt=spec.options.prompt,
                                   temperature=spec.options.temperature)
    turns, known_names = None, {}
    if diarizer is not None:
        with stages("diarization"):
            turns, voices = diarizer.diarize_with_voices(
                audio.samples, spec.speakers,
                on_progress=_scaled(hooks.on_progress, asr_share, 1.0))
            if spec.options.known_speakers:
                references = [(known.name, diarizer.embed(reference_samples(known, work_dir)))
                              for known in spec.options.known_speakers]
                known_names = match_voices(voices, references)
    with stages("assembly"):
        result = build_result(output, audio.duration_s, with_words=with_words,
                              turns=turns, known_names=known_names)
    endpoint = models.catalog.analysis
    if spec.options.analyses and endpoint is not None:
        with stages("analysis"):
            result["analysis"] = run_analyses(spec.options.analyses, result, endpoint,
                                              settings)
    log.info("transcription %s: stages %s%s", spec.transcription_id,
             ", ".join(f"{name} {seconds:.2f} s" for name, seconds in stages.seconds.items()),
             f"; {len(result['speakers'])} speaker(s)" if turns is not None else "")
    return PipelineOutcome(result=result, duration_s=audio.duration_s, timings=stages.seconds)


def _scaled(report: Callable[[float], None], low: float,
            high: float) -> Callable[[float], None]:
    """Map a stage's own 0..1 progress onto its share [low, high] of the whole job."""
    return lambda fraction: report(low + (high - low) * fraction)


class _Stopwatch:
    """Times named stages: ``with stages("decode"): …``; tells ``on_start`` as each begins
    (before its clock starts, so a held job's wait is not counted as the stage's time)."""

    def __init__(self, on_start: Callable[[str], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.on_start = on_start

    def __call__(self, name: str) -> _Stopwatch:
        self._name = name
        return self

    def __enter__(self) -> None:
        if self.on_start is not None:
            self.on_start(self._name)
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.seconds[self._name] = round(time.perf_counter() - self._started, 4)
