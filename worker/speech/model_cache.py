"""The worker's models: each pipeline's engines loaded once per process and kept warm.

A pipeline has a speech-recognition engine and, when configured, a diarizer. Each has its
own slot: a diarizer that cannot load (pyannote not installed, weights missing) fails only
the jobs that ask for speaker labels.

Loading happens at worker start, before any job is taken, so the first job does not pay for
it and a model that cannot load is reported at once (to ``/readyz`` through the worker's
announcement, and to every job that asks for it). Nothing is loaded at import time.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.transcriptions.pipelines import Pipeline, PipelineCatalog
from worker.errors import ModelUnavailable
from worker.speech.asr import AsrEngine
from worker.speech.diarization import Diarizer
from worker.speech.remote_engine import RemoteAsrEngine

Model = TypeVar("Model")

log = logging.getLogger(__name__)


@dataclass
class _Slot(Generic[Model]):
    """One model of one pipeline: its state, and the model once loaded."""

    load: Callable[[], Model]
    state: str = "loading"  # loading | ready | failed
    model: Model | None = None
    error: str | None = None
    loads: int = 0

    def get(self) -> Model:
        if self.state == "failed":
            # Try once more: the operator may have fixed the cause (weights copied in).
            self.fill()
        if self.model is None:
            raise ModelUnavailable(self.error or "The model is not loaded yet; try again.")
        return self.model

    def fill(self) -> None:
        self.state = "loading"
        try:
            self.model = self.load()
        except ModelUnavailable as exc:
            self.state, self.error = "failed", exc.message
            log.error("%s", exc.message)
            return
        self.loads += 1
        self.state, self.error = "ready", None

    def status(self) -> dict[str, object]:
        return {"state": self.state, "error": self.error, "loads": self.loads}


class ModelCache:
    """Holds each pipeline's engine (and diarizer) for the worker's lifetime."""

    def __init__(self, catalog: PipelineCatalog,
                 load: Callable[[Pipeline], AsrEngine | RemoteAsrEngine] = AsrEngine,
                 load_diarizer: Callable[[Pipeline, str | None], Diarizer] = Diarizer,
                 hf_token: str | None = None) -> None:
        self.catalog = catalog
        self._engines: dict[str, _Slot[AsrEngine | RemoteAsrEngine]] = {
            p.code: _Slot(lambda p=p: load(p)) for p in catalog.pipelines}
        self._diarizers: dict[str, _Slot[Diarizer]] = {
            p.code: _Slot(lambda p=p: load_diarizer(p, hf_token))
            for p in catalog.pipelines if p.can_diarize}

    def load_all(self) -> None:
        """Load every pipeline's models; failures are recorded, not raised.

        Then everything alive is moved out of the garbage collector's reach (``gc.freeze``):
        the models live as long as the process, and torch and pyannote bring half a million
        objects that every full collection would otherwise walk. Decoding runs one full
        collection per job (PyAV frees its resampler's buffers only then); with pyannote
        loaded that took 0.3 s per job, frozen it takes nothing.
        """
        for pipeline in self.catalog.pipelines:
            self._engines[pipeline.code].fill()
            if pipeline.code in self._diarizers:
                self._diarizers[pipeline.code].fill()
        gc.freeze()

    def engine(self, code: str) -> AsrEngine | RemoteAsrEngine:
        """The warm engine of a pipeline, or :class:`ModelUnavailable` saying how to fix it."""
        return self._engines[self._pipeline(code).code].get()

    def diarizer(self, code: str) -> Diarizer:
        """The warm diarizer of a pipeline, or :class:`ModelUnavailable` saying why not."""
        pipeline = self._pipeline(code)
        slot = self._diarizers.get(pipeline.code)
        if slot is None:
            raise ModelUnavailable(f"Pipeline '{pipeline.code}' has no diarization model on "
                                   "this worker; check that the API and workers read the same "
                                   "pipelines file.")
        return slot.get()

    def status(self) -> dict[str, dict[str, object]]:
        """Per pipeline: state, error and how many times this process loaded the model, with
        the same for its diarizer under ``diarization`` when it has one."""
        status = {code: slot.status() for code, slot in self._engines.items()}
        for code, slot in self._diarizers.items():
            status[code]["diarization"] = slot.status()
        return status

    def _pipeline(self, code: str) -> Pipeline:
        pipeline = self.catalog.find(code)
        if pipeline is None:
            raise ModelUnavailable(f"Pipeline '{code}' is not configured on this worker; "
                                   "check that the API and workers read the same pipelines file.")
        return pipeline
