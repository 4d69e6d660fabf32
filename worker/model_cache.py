"""The worker's models: each pipeline's engine loaded once per process and kept warm.

Loading happens at worker start, before any job is taken, so the first job does not pay for
it and a model that cannot load is reported at once (to ``/readyz`` through the worker's
announcement, and to every job that asks for it). Nothing is loaded at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.pipelines import Pipeline, PipelineCatalog
from worker.asr import AsrEngine
from worker.errors import ModelUnavailable

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    state: str = "loading"  # loading | ready | failed
    engine: AsrEngine | None = None
    error: str | None = None
    loads: int = 0


class ModelCache:
    """Holds one engine per pipeline for the worker's lifetime."""

    def __init__(self, catalog: PipelineCatalog,
                 load: Callable[[Pipeline], AsrEngine] = AsrEngine) -> None:
        self.catalog = catalog
        self._load = load
        self._slots = {pipeline.code: _Slot() for pipeline in catalog.pipelines}

    def load_all(self) -> None:
        """Load every pipeline's model; failures are recorded, not raised."""
        for pipeline in self.catalog.pipelines:
            self._load_one(pipeline)

    def engine(self, code: str) -> AsrEngine:
        """The warm engine of a pipeline, or :class:`ModelUnavailable` saying how to fix it."""
        pipeline = self.catalog.find(code)
        if pipeline is None:
            raise ModelUnavailable(f"Pipeline '{code}' is not configured on this worker; "
                                   "check that the API and workers read the same pipelines file.")
        slot = self._slots[pipeline.code]
        if slot.state == "failed":
            # Try once more: the operator may have fixed the cause (weights copied in).
            self._load_one(pipeline)
        if slot.engine is None:
            raise ModelUnavailable(slot.error or f"Pipeline '{code}': model not loaded yet.")
        return slot.engine

    def status(self) -> dict[str, dict[str, object]]:
        """Per pipeline: state, error and how many times this process loaded the model."""
        return {code: {"state": slot.state, "error": slot.error, "loads": slot.loads}
                for code, slot in self._slots.items()}

    def _load_one(self, pipeline: Pipeline) -> None:
        slot = self._slots[pipeline.code]
        slot.state = "loading"
        try:
            slot.engine = self._load(pipeline)
        except ModelUnavailable as exc:
            slot.state, slot.error = "failed", exc.message
            log.error("%s", exc.message)
            return
        slot.loads += 1
        slot.state, slot.error = "ready", None
