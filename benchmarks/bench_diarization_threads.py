"""Two diarization jobs at once in one process: one pyannote pipeline behind a lock, or one
pipeline per thread? (The choice behind ``worker.speech.diarization.Diarizer``'s lock.)

Diarizes ``--jobs`` copies of a one-minute clip (``tests/fixtures/sample.wav`` twice) with the
tiny random pyannote pipeline (``tests/support/tiny_pyannote.py``) three ways, in this order,
in one run:

- one thread, one pipeline (the baseline);
- two threads sharing one pipeline, calls serialised by a lock (what the worker does);
- two threads, each with a pipeline of its own (no lock; twice the weights in memory).

Prints the wall time of each, jobs per minute, and the resident memory the second pipeline
adds. Run from the repository root::

    .venv/bin/python -m benchmarks.bench_diarization_threads [--jobs 8]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.transcriptions.pipelines import DecodingOptions, DiarizationConfig, Pipeline
from benchmarks.procstats import load_average
from tests.conftest import write_repeated_wav
from tests.support.stack import REPO
from tests.support.tiny_pyannote import build_tiny_diarization
from worker.speech.audio import decode
from worker.speech.diarization import Diarizer, SpeakerConstraints

FIXTURE = REPO / "tests" / "fixtures" / "sample.wav"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(jobs: int, threads: int, diarizer_for: Callable[[int], Diarizer],
          samples: np.ndarray) -> float:
    """Seconds for ``jobs`` diarizations spread over ``threads`` threads."""
    todo: queue.Queue[int] = queue.Queue()
    for number in range(jobs):
        todo.put(number)

    def lane(index: int) -> None:
        diarizer = diarizer_for(index)
        while True:
            try:
                todo.get_nowait()
            except queue.Empty:
                return
            diarizer.diarize(samples, SpeakerConstraints())

    started = time.perf_counter()
    workers = [threading.Thread(target=lane, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="voxhook-diar-threads-"))
    try:
        model = build_tiny_diarization(folder / "diarization")
        write_repeated_wav(FIXTURE, folder / "minute.wav", times=2)
        samples = decode(folder / "minute.wav").samples
        pipeline = Pipeline(code="tiny", description="bench", model="unused", device="cpu",
                            compute_type="int8", decoding=DecodingOptions(),
                            diarization=DiarizationConfig(model=str(model), device="cpu"))
        first = Diarizer(pipeline)
        first.diarize(samples, SpeakerConstraints())  # warm up
        before = rss_mb()
        second = Diarizer(pipeline)
        second.diarize(samples, SpeakerConstraints())
        extra_mb = rss_mb() - before
        print(f"# bench_diarization_threads: {args.jobs} one-minute clips, tiny random pyannote "
              f"pipeline, {os.cpu_count()} cores, load average {load_average()}")
        rows = [("1 thread, 1 pipeline", timed(args.jobs, 1, lambda _: first, samples)),
                ("2 threads, 1 pipeline + lock", timed(args.jobs, 2, lambda _: first, samples)),
                ("2 threads, 1 pipeline each",
                 timed(args.jobs, 2, lambda index: (first, second)[index], samples))]
        base = rows[0][1]
        print(f"{'how':<30} {'seconds':>8} {'jobs/min':>9} {'vs 1 thread':>12}")
        for name, seconds in rows:
            print(f"{name:<30} {seconds:>8.2f} {args.jobs * 60 / seconds:>9.1f} "
                  f"{base / seconds:>11.2f}x")
        print(f"a second pipeline adds {extra_mb:.0f} MiB resident")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
