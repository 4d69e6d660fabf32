"""Would batching the 30 s windows of *different* files pay, over concurrency alone?

Sixteen one-minute files (``tests/fixtures/sample.wav`` twice), whisper-tiny-shaped random
model, CPU int8, greedy decoding with ``max_new_tokens`` capped, in one process, in one run:

(a) **concurrency 2**: two threads on one model (``num_workers=2``, one CPU thread each),
    each transcribing files one after another: what a worker with
    ``VOXHOOK_WORKER_CONCURRENCY=2`` does;
(b) **cross-file batches**: faster-whisper's batched pipeline (``BatchedInferencePipeline``,
    ``--batch-size`` windows per encoder/decoder call, two CPU threads) over the sixteen
    files' windows. Its windows come from VAD over each file; to batch windows of different
    files together the files are joined (with a second of silence between them) into one
    stream, which is what a cross-file batcher would hand the model. It is an upper bound
    for such a batcher: it pays no bookkeeping to split results back per file.

Prints seconds and jobs per minute of each and the ratio (b)/(a). The issue's bar: build a
cross-file batcher only if (b) is at least 1.3x faster. Then, not timed, the words: how many
files get from the cross-file batches (split back by each file's offset) exactly the words
that the batched pipeline gives each file alone; a batcher worth building must give all.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_batching [--files 16] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.procstats import CpuSnapshot, load_average
from tests.conftest import write_repeated_wav
from tests.support.stack import REPO
from tests.support.tiny_whisper import BENCHMARK_SIZE, build_tiny_whisper
from worker.speech.audio import decode

FIXTURE = REPO / "tests" / "fixtures" / "sample.wav"
NOISY_CORES = 0.25
SAMPLE_RATE = 16000
TARGET = 1.3


def concurrent(model_dir: Path, files: list[np.ndarray], tokens: int) -> float:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", num_workers=2,
                         cpu_threads=1, local_files_only=True)
    pending = list(range(len(files)))
    lock = threading.Lock()

    def lane() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index = pending.pop()
            list(model.transcribe(files[index], beam_size=1, temperature=0.0, language="en",
                                  vad_filter=True, max_new_tokens=tokens)[0])

    list(model.transcribe(files[0][:16000 * 5], language="en", max_new_tokens=8)[0])
    started = time.perf_counter()
    lanes = [threading.Thread(target=lane) for _ in range(2)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    return time.perf_counter() - started


def cross_file_batches(model_dir: Path, files: list[np.ndarray], tokens: int,
                       batch_size: int) -> float:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2,
                         local_files_only=True)
    batched = BatchedInferencePipeline(model)
    list(model.transcribe(files[0][:16000 * 5], language="en", max_new_tokens=8)[0])
    started = time.perf_counter()
    list(batched.transcribe(joined(files), batch_size=batch_size, beam_size=1,
                            temperature=0.0, language="en", max_new_tokens=tokens)[0])
    return time.perf_counter() - started


def joined(files: list[np.ndarray]) -> np.ndarray:
    """The files one after another, each followed by a second of silence."""
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    return np.concatenate([part for audio in files for part in (audio, silence)])


def words_per_file(model_dir: Path, files: list[np.ndarray], tokens: int,
                   batch_size: int) -> tuple[int, int]:
    """How many files get, from the cross-file batches, the very words (text, and times to
    10 ms) that the batched pipeline gives each file alone; and how many files there are.

    The joined stream's words are split back by each file's offset in it."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    batched = BatchedInferencePipeline(WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=2,
        local_files_only=True))

    def words(audio: np.ndarray) -> list[tuple[str, float, float]]:
        segments = batched.transcribe(audio, batch_size=batch_size, beam_size=1,
                                      temperature=0.0, language="en", max_new_tokens=tokens,
                                      word_timestamps=True)[0]
        return [(w.word, w.start, w.end) for segment in segments for w in segment.words or ()]

    together = words(joined(files))
    equal, offset = 0, 0.0
    for audio in files:
        length = len(audio) / SAMPLE_RATE
        mine = [(text, round(start - offset, 2), round(end - offset, 2))
                for text, start, end in together if offset <= start < offset + length + 1]
        alone = [(text, round(start, 2), round(end, 2)) for text, start, end in words(audio)]
        equal += mine == alone
        offset += length + 1
    return equal, len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="voxhook-batching-"))
    try:
        model_dir = build_tiny_whisper(folder / "model", BENCHMARK_SIZE)
        write_repeated_wav(FIXTURE, folder / "minute.wav", times=2)
        minute = decode(folder / "minute.wav").samples
        files = [minute.copy() for _ in range(args.files)]
        print(f"# bench_batching: {args.files} one-minute files, whisper-tiny-shaped random "
              f"model, CPU int8, {os.cpu_count()} cores, max_new_tokens "
              f"{args.max_new_tokens}; load average {load_average()}")
        rows = []
        for name, measure in (
                ("concurrency 2 (one model)",
                 lambda: concurrent(model_dir, files, args.max_new_tokens)),
                (f"cross-file batches of {args.batch_size}",
                 lambda: cross_file_batches(model_dir, files, args.max_new_tokens,
                                            args.batch_size))):
            before = CpuSnapshot.take(())
            seconds = measure()
            others = CpuSnapshot.take(()).others_since(before) / seconds
            rows.append((name, seconds, others))
        print(f"{'how':<30} {'seconds':>8} {'jobs/min':>9} {'others (cores)':>15}")
        for name, seconds, others in rows:
            flag = "  disturbed" if others > NOISY_CORES else ""
            print(f"{name:<30} {seconds:>8.1f} {args.files * 60 / seconds:>9.1f} "
                  f"{others:>15.2f}{flag}")
        ratio = rows[0][1] / rows[1][1]
        print(f"cross-file batching vs concurrency alone: {ratio:.2f}x (build it at >= "
              f"{TARGET}x: {'yes' if ratio >= TARGET else 'no'})")
        equal, count = words_per_file(model_dir, files, args.max_new_tokens, args.batch_size)
        print(f"words: {equal} of {count} files get from the cross-file batches exactly the "
              "words the batched pipeline gives each alone (text, and times to 10 ms)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
