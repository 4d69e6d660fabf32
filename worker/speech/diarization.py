"""Speaker diarization with pyannote.audio 4: loading a pipeline's diarizer and running it.

The diarizer takes the samples the job already decoded for speech recognition (16 kHz mono
float32, wrapped without a copy as the ``{"waveform", "sample_rate"}`` mapping pyannote
accepts), so a file is decoded once per job. It returns plain :class:`SpeakerTurn` values;
no pyannote or torch type leaks out. pyannote and torch are imported only when a diarizer is
loaded: a deployment without the ``diarization`` extra runs, and only jobs that ask for
speaker labels fail, with the fix spelled out.

Loading follows pyannote's own ``Pipeline.from_pretrained``: a local folder (``config.yaml``
with its ``segmentation``/``embedding``/``plda`` folders, the layout of the hub's
``pyannote/speaker-diarization-community-1``) loads with no network; a hub id downloads once
with the token in ``HF_TOKEN``.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.transcriptions.pipelines import DiarizationConfig, Pipeline
from worker.errors import ModelUnavailable, summarize
from worker.speech.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]

#: How to add what is missing when pyannote.audio does not import.
INSTALL_ADVICE = ("install the diarization extra (`pip install 'voxhook[diarization]'`, "
                  "see docs/diarization.md) on the worker and restart it, or send "
                  "diarize: false")


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of time in which one speaker talks; turns of two speakers may overlap."""

    start: float
    end: float
    #: The diarizer's own label (``SPEAKER_00``…); the assembly step renumbers them.
    speaker: str


@dataclass(frozen=True)
class SpeakerConstraints:
    """What the request says about the number of speakers (all optional)."""

    exact: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def keywords(self) -> dict[str, int]:
        """pyannote's keyword arguments; an exact count makes the bounds moot."""
        if self.exact is not None:
            return {"num_speakers": self.exact}
        bounds = {"min_speakers": self.minimum, "max_speakers": self.maximum}
        return {key: value for key, value in bounds.items() if value is not None}


def resolve_torch_device(device: str) -> str:
    """``auto`` is the GPU when torch sees one (like the ASR model's ``auto``)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Diarizer:
    """One loaded pyannote speaker-diarization pipeline, kept for the worker's lifetime."""

    def __init__(self, pipeline: Pipeline, hf_token: str | None = None) -> None:
        if pipeline.diarization is None:
            raise ValueError(f"pipeline {pipeline.code} has no diarization configured")
        self.pipeline = pipeline
        config = pipeline.diarization
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # no telemetry
        try:
            torch, pyannote_pipeline_class = _import_pyannote()
        except ImportError as exc:
            raise ModelUnavailable(
                f"Pipeline '{pipeline.code}' is configured to label speakers, but "
                f"pyannote.audio is not installed on this worker ({exc}): "
                f"{INSTALL_ADVICE}.") from exc
        self.device = resolve_torch_device(config.device)
        try:
            loaded = pyannote_pipeline_class.from_pretrained(config.model, token=hf_token)
            if loaded is None:  # pyannote answers None when the hub refuses the download
                raise RuntimeError("the model hub refused the download")
            loaded.to(torch.device(self.device))
        except Exception as exc:
            raise ModelUnavailable(diarization_load_advice(pipeline.code, config, exc)) from exc
        self._torch = torch
        self._pyannote = loaded
        #: One job at a time on this pipeline: a pyannote pipeline keeps per-call state
        #: (its hook, its cached inference), and torch already spreads one call over the
        #: cores (see benchmarks/README.md, "Concurrent jobs on one model").
        self._one_at_a_time = threading.Lock()
        log.info("pipeline %s: diarization model %s loaded on %s", pipeline.code, config.model,
                 self.device)

    def diarize(self, samples: np.ndarray, constraints: SpeakerConstraints,
                on_progress: ProgressCallback | None = None) -> tuple[SpeakerTurn, ...]:
        """Who speaks when in 16 kHz mono ``samples``; turns sorted by start."""
        return self.diarize_with_voices(samples, constraints, on_progress)[0]

    def diarize_with_voices(self, samples: np.ndarray, constraints: SpeakerConstraints,
                            on_progress: ProgressCallback | None = None
                            ) -> tuple[tuple[SpeakerTurn, ...], dict[str, np.ndarray]]:
        """The turns, and each speaker's voice: the centroid of the embeddings pyannote
        clustered into that speaker (label -> vector; empty when pyannote gave none)."""
        waveform = self._torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        audio = {"waveform": waveform.unsqueeze(0), "sample_rate": SAMPLE_RATE}
        hook = _ProgressHook(on_progress) if on_progress else None
        with self._one_at_a_time, self._torch.inference_mode():
            output = self._pyannote(audio, hook=hook, **constraints.keywords())
        # pyannote 4 also gives a version without overlapping turns, made for aligning
        # transcripts: each instant has one speaker, the likeliest one.
        annotation = getattr(output, "exclusive_speaker_diarization", None) or getattr(
            output, "speaker_diarization", output)
        turns = [SpeakerTurn(start=float(segment.start), end=float(segment.end),
                             speaker=str(label))
                 for segment, _, label in annotation.itertracks(yield_label=True)]
        voices: dict[str, np.ndarray] = {}
        centroids = getattr(output, "speaker_embeddings", None)
        if centroids is not None:  # rows in the order of speaker_diarization.labels()
            for label, vector in zip(output.speaker_diarization.labels(), centroids,
                                     strict=False):
                voices[str(label)] = np.asarray(vector, dtype=np.float64)
        return tuple(sorted(turns, key=lambda turn: (turn.start, turn.end))), voices

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """The voice of a clip (16 kHz mono), by the same embedding model that made the
        speakers' centroids, so the two can be compared."""
        waveform = self._torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        with self._one_at_a_time, self._torch.inference_mode():
            vectors = self._pyannote._embedding(waveform.reshape(1, 1, -1))
        return np.asarray(vectors[0], dtype=np.float64)


def _import_pyannote() -> tuple[Any, Any]:
    """Import torch and pyannote's Pipeline, quietly.

    pyannote warns at import when torchcodec (its file decoder) cannot load; Voxhook always
    hands it decoded samples, so that decoder is never used and the warning is noise.
    """
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*torchcodec is not installed")
        from pyannote.audio import Pipeline as PyannotePipeline
    return torch, PyannotePipeline


class _ProgressHook:
    """pyannote calls its hook per step and chunk; turn that into a fraction of the whole.

    The diarization pipeline runs two long steps (segmentation, then embeddings); each
    reports ``completed``/``total`` as it goes. They count for half of the work each.
    """

    _STEPS = ("segmentation", "embeddings")

    def __init__(self, on_progress: ProgressCallback) -> None:
        self.on_progress = on_progress

    def __call__(self, step_name: str, step_artifact: Any, file: Any = None,
                 total: int | None = None, completed: int | None = None) -> None:
        if step_name not in self._STEPS or not total or completed is None:
            return
        share = (self._STEPS.index(step_name) + min(completed / total, 1.0)) / len(self._STEPS)
        self.on_progress(share)


def diarization_load_advice(code: str, config: DiarizationConfig, exc: Exception) -> str:
    """A message that says why a diarization model did not load and how to fix it."""
    detail = summarize(exc)
    if Path(config.model).is_dir():
        return (f"Pipeline '{code}': the diarization folder {config.model} could not be "
                f"loaded ({detail}). It must be a pyannote.audio pipeline folder: config.yaml "
                "and the model folders it names.")
    if config.model.startswith(("/", ".")):
        return (f"Pipeline '{code}': the diarization folder {config.model} does not exist. "
                "Fix the path in the pipelines file (or VOXHOOK_DIARIZATION_MODEL).")
    return (f"Pipeline '{code}': the diarization model '{config.model}' could not be loaded "
            f"({detail}). A hub model needs its licence accepted on huggingface.co and a "
            "token in HF_TOKEN, and network access once; or download it elsewhere "
            f"(`huggingface-cli download {config.model} --local-dir FOLDER`), copy FOLDER "
            "here and set the pipeline's diarization model to that folder.")
