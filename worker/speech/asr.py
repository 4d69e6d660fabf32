"""Speech recognition with faster-whisper: loading a pipeline's model and transcribing.

The engine returns plain dataclasses (no faster-whisper types leak out), reports progress as
it walks through the audio, and never touches the database. Device and compute type follow
the pipeline: ``auto`` means CUDA with float16 when a GPU is visible, else CPU with int8.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.transcriptions.languages import from_engine_code, to_engine_code
from app.transcriptions.pipelines import DecodingOptions, Pipeline
from worker.errors import ModelUnavailable, summarize

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]
#: Hears one decoded segment: (start, end, text).
SegmentCallback = Callable[[float, float, str], None]


@dataclass(frozen=True)
class AsrWord:
    word: str
    start: float
    end: float
    probability: float
    #: Whether a space comes before the word (not in Chinese, Japanese, Thai…), so that
    #: words regrouped into new utterances join back into the text the engine wrote.
    spaced: bool = True


@dataclass(frozen=True)
class AsrSegment:
    start: float
    end: float
    text: str
    #: The segment's average log-probability per token (confidence without words).
    avg_logprob: float
    words: tuple[AsrWord, ...] = field(default=())


@dataclass(frozen=True)
class AsrOutput:
    segments: tuple[AsrSegment, ...]
    #: ISO 639-1 code, given or detected.
    language: str


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """Turn ``auto`` settings into what CTranslate2 will use on this machine."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


class AsrEngine:
    """One loaded faster-whisper model, kept for the worker's lifetime."""

    def __init__(self, pipeline: Pipeline, *, parallel_jobs: int = 1,
                 cpu_threads: int = 0) -> None:
        """``parallel_jobs``: how many ``transcribe`` calls may run at once on this one
        model (CTranslate2's ``num_workers``: one set of weights, that many replicas of
        the compute state); ``cpu_threads``: threads each of them uses (0: CTranslate2's
        default)."""
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.pipeline = pipeline
        self.device, self.compute_type = resolve_device(pipeline.device, pipeline.compute_type)
        is_folder = Path(pipeline.model).is_dir()
        try:
            self.model = WhisperModel(pipeline.model, device=self.device,
                                      compute_type=self.compute_type,
                                      local_files_only=is_folder,
                                      num_workers=max(1, parallel_jobs),
                                      cpu_threads=max(0, cpu_threads))
        except Exception as exc:
            raise ModelUnavailable(model_load_advice(pipeline, exc)) from exc
        self.batched = (BatchedInferencePipeline(self.model)
                        if pipeline.decoding.batch_size > 1 else None)
        log.info("pipeline %s: model %s loaded on %s (%s)", pipeline.code, pipeline.model,
                 self.device, self.compute_type)

    def transcribe(self, samples: np.ndarray, *, language: str | None, word_timestamps: bool,
                   on_progress: ProgressCallback | None = None,
                   on_segment: SegmentCallback | None = None,
                   task: str = "transcribe", initial_prompt: str | None = None,
                   temperature: float | None = None) -> AsrOutput:
        """Transcribe 16 kHz mono samples; ``language`` None detects it.

        ``task="translate"`` writes English; ``initial_prompt`` and ``temperature`` override
        the pipeline's decoding for this request; ``on_segment`` hears each segment as soon
        as it is decoded (streaming)."""
        options = decoding_arguments(self.pipeline.decoding)
        options["task"] = task
        if initial_prompt:
            options["initial_prompt"] = initial_prompt
        if temperature is not None:
            options["temperature"] = temperature
        duration = len(samples) / 16_000
        engine_language = to_engine_code(language) if language else None
        if self.batched is not None:
            segments_iter, info = self.batched.transcribe(
                samples, language=engine_language, word_timestamps=word_timestamps,
                batch_size=self.pipeline.decoding.batch_size, **options)
        else:
            segments_iter, info = self.model.transcribe(
                samples, language=engine_language, word_timestamps=word_timestamps, **options)
        segments = []
        reached = 0.0  # segment ends need not be in order; progress never goes back
        for segment in segments_iter:  # decoding happens lazily, window by window
            segments.append(AsrSegment(
                start=segment.start, end=segment.end, text=segment.text.strip(),
                avg_logprob=segment.avg_logprob,
                words=tuple(AsrWord(w.word.strip(), w.start, w.end, w.probability,
                                    spaced=w.word[:1].isspace())
                            for w in (segment.words or ()))))
            if on_segment is not None and segments[-1].text:
                on_segment(segments[-1].start, segments[-1].end, segments[-1].text)
            if on_progress and duration > 0:
                reached = max(reached, min(max(segment.end / duration, 0.0), 1.0))
                on_progress(reached)
        return AsrOutput(segments=tuple(segments), language=from_engine_code(info.language))


def decoding_arguments(options: DecodingOptions) -> dict[str, object]:
    """The pipeline's decoding options as faster-whisper ``transcribe`` keyword arguments."""
    temperature = options.temperature
    arguments: dict[str, object] = {
        "beam_size": options.beam_size,
        "temperature": temperature[0] if len(temperature) == 1 else list(temperature),
        "vad_filter": options.vad_filter,
        "condition_on_previous_text": options.condition_on_previous_text,
    }
    if options.max_new_tokens is not None:
        arguments["max_new_tokens"] = options.max_new_tokens
    return arguments


def model_load_advice(pipeline: Pipeline, exc: Exception) -> str:
    """A message that says why a model did not load and how to fix it."""
    detail = summarize(exc)
    if Path(pipeline.model).is_dir():
        return (f"Pipeline '{pipeline.code}': the model folder {pipeline.model} could not be "
                f"loaded ({detail}). It must be a CTranslate2 Whisper model with model.bin, "
                "config.json and tokenizer.json.")
    if pipeline.model.startswith(("/", ".")):
        return (f"Pipeline '{pipeline.code}': the model folder {pipeline.model} does not "
                "exist. Fix the path in the pipelines file (or VOXHOOK_MODEL).")
    return (f"Pipeline '{pipeline.code}': the model '{pipeline.model}' could not be loaded "
            f"({detail}). The worker downloads it from the Hugging Face hub on first use: "
            "give it network access once, or download it elsewhere with "
            f"`python -c \"from faster_whisper import download_model; "
            f"print(download_model('{pipeline.model}'))\"`, copy the folder here and set the "
            "pipeline's model (or VOXHOOK_MODEL) to that folder.")
