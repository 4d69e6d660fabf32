"""Where a diarized job's time goes, and proof that its audio is decoded once.

Runs the worker's pipeline (``worker.speech.pipeline.run_pipeline``: fetch → decode → transcribe →
diarize → assemble) in this process on ``tests/fixtures/sample.wav`` (30 s, two people),
served over loopback HTTP, with ``diarize`` and ``speaker_count`` 2, using the test-suite's
models: the random whisper-tiny-shaped model of ``tests/support/tiny_whisper.py`` and the
small random pyannote pipeline of ``tests/support/tiny_pyannote.py``, loaded the way the
worker loads them (``ModelCache``).

Prints per run the seconds of each stage as the pipeline timed them, then the medians and
each stage's share. For the single decode it prints how many times the job decoded the file
(the benchmark counts calls of the decoder the pipeline uses) and whether the speech model
and the diarizer received the very same sample array (object identity, so no copy and no
second decode), and what a second decode would have cost.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_diarization [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import worker.speech.pipeline as pipeline_module
from app.config import Settings
from app.transcriptions.pipelines import (
    DecodingOptions,
    DiarizationConfig,
    Pipeline,
    PipelineCatalog,
)
from tests.support.media_server import MediaServer
from tests.support.recording import SampleRecorder
from tests.support.stack import REPO
from tests.support.tiny_pyannote import build_tiny_diarization
from tests.support.tiny_whisper import build_tiny_whisper
from worker.media.store import MediaStore
from worker.speech.asr import AsrEngine
from worker.speech.audio import decode
from worker.speech.diarization import Diarizer, SpeakerConstraints
from worker.speech.model_cache import ModelCache
from worker.speech.pipeline import JobSpec, run_pipeline

FIXTURES = REPO / "tests" / "fixtures"
STAGES = ("fetch", "decode", "asr", "diarization", "assembly")


class _Hooks:
    def on_audio(self, duration_s: float) -> None:
        pass

    def on_progress(self, fraction: float) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    decodes: list[Path] = []

    def counting_decode(path: Path) -> Any:
        decodes.append(path)
        return decode(path)

    # The benchmark counts the pipeline's decoder calls by wrapping the function it calls.
    pipeline_module.decode = counting_decode

    with tempfile.TemporaryDirectory(prefix="voxhook-bench-diarization-") as scratch_name:
        scratch = Path(scratch_name)
        whisper = build_tiny_whisper(scratch / "tiny-whisper")
        diarization = build_tiny_diarization(scratch / "tiny-diarization")
        pipeline = Pipeline(
            code="tiny", description="test models", model=str(whisper), device="cpu",
            compute_type="int8",
            decoding=DecodingOptions(beam_size=1, temperature=(0.0,), max_new_tokens=48),
            diarization=DiarizationConfig(model=str(diarization), device="cpu"))
        seen: list[np.ndarray] = []
        models = ModelCache(
            PipelineCatalog((pipeline,), "tiny"),
            load=lambda p: SampleRecorder(AsrEngine(p), seen),
            load_diarizer=lambda p, token: SampleRecorder(Diarizer(p, token), seen))
        models.load_all()
        settings = Settings(data_dir=scratch / "data", fetch_allowlist=("127.0.0.1",))
        media = MediaStore.from_settings(settings)
        work_dir = scratch / "work"
        work_dir.mkdir()
        with MediaServer(FIXTURES) as server:
            spec = JobSpec(transcription_id="tr_bench", url=server.url("sample.wav"),
                           pipeline_code="tiny", language="en", align=True, diarize=True,
                           speakers=SpeakerConstraints(exact=2))
            run_pipeline(spec, models, settings, media, _Hooks(), work_dir)  # warm-up
            rows: list[dict[str, float]] = []
            shared: list[bool] = []
            decode_counts: list[int] = []
            speakers: list[int] = []
            for run in range(1, args.runs + 1):
                seen.clear()
                decodes.clear()
                outcome = run_pipeline(spec, models, settings, media, _Hooks(), work_dir)
                rows.append(outcome.timings)
                shared.append(len(seen) == 2 and seen[0] is seen[1])
                decode_counts.append(len(decodes))
                speakers.append(len(outcome.result["speakers"]))
                print(f"run {run}: " + "  ".join(f"{stage} {outcome.timings[stage]:.3f} s"
                                                 for stage in STAGES)
                      + f"  total {sum(outcome.timings.values()):.3f} s")

    medians = {stage: statistics.median(row[stage] for row in rows) for stage in STAGES}
    total = sum(medians.values())
    print(f"\nsample.wav, 30.0 s, diarize with speaker_count 2, {args.runs} runs "
          f"(medians; {os.cpu_count()} CPU cores, test models):")
    for stage in STAGES:
        print(f"  {stage:<12} {medians[stage]:7.3f} s  {100 * medians[stage] / total:5.1f} %")
    print(f"  {'total':<12} {total:7.3f} s")
    print(f"decodes per job: {sorted(set(decode_counts))} (expected [1])")
    print(f"speech model and diarizer got the same array: {all(shared)}")
    print(f"speakers found: {sorted(set(speakers))}")
    print(f"a second decode for the diarizer would add {medians['decode']:.3f} s "
          f"({100 * medians['decode'] / total:.1f} % of the job)")


if __name__ == "__main__":
    main()
