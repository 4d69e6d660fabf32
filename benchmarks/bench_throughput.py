"""Throughput of one worker process: jobs per minute at concurrency 1 vs 2 (same run).

Sixteen one-minute files (``tests/fixtures/sample.wav`` twice) are transcribed by the real
service: the API (gunicorn) and one ``voxhook worker`` process, with
``VOXHOOK_WORKER_CONCURRENCY`` set to each value in turn (a fresh worker each time, same API,
database and Redis). The worker is started and waits ready (its models loaded) before the
sixteen POSTs go in at once, so loading is not counted. Jobs per minute is 16 over the span
from the first job's ``started_at`` to the last one's ``completed_at``; the worker's peak RSS
is its ``VmHWM`` (``/proc``) once the batch is done. The CPU used meanwhile by other processes
is shown: a figure taken while the machine did other work is marked "disturbed".

The model is whisper-tiny-shaped with random weights (``tests/support/tiny_whisper.py``),
decoding greedily with ``max_new_tokens`` capped (a random model otherwise talks until the
window's 448-token limit), as the test-suite does. ``--diarize`` adds the tiny random pyannote
pipeline (speaker labels on every job).

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_throughput [--files 16] [--concurrency 1 2]
        [--max-new-tokens 48] [--diarize]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from app.ops.embedded_redis import EmbeddedRedis
from app.store.db import Database
from app.store.models import Transcription
from benchmarks.procstats import CpuSnapshot, Reaper, load_average, run_with_cleanup
from tests.conftest import write_repeated_wav
from tests.support.media_server import MediaServer
from tests.support.stack import REPO, Stack, tiny_pipelines_toml
from tests.support.tiny_whisper import BENCHMARK_SIZE, build_tiny_whisper

FIXTURE = REPO / "tests" / "fixtures" / "sample.wav"
NOISY_CORES = 0.25


@dataclass
class BatchRun:
    concurrency: int
    seconds: float
    peak_rss_mb: float
    others_cores: float
    statuses: dict[str, int]

    def jobs_per_minute(self, files: int) -> float:
        return files * 60.0 / self.seconds


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_batch(stack: Stack, reaper: Reaper, key: str, url: str, files: int,
              concurrency: int, diarize: bool) -> BatchRun:
    """Start a worker at ``concurrency``, wait ready, post ``files`` jobs, wait for all."""
    stack.extra_env["VOXHOOK_WORKER_CONCURRENCY"] = str(concurrency)
    worker = stack.start_worker(f"worker-c{concurrency}")
    reaper.watch(worker.pid)
    try:
        stack.wait_ready(timeout_s=300)
        headers = {"Authorization": f"Bearer {key}"}
        before = CpuSnapshot.take((worker.pid,))
        wall_start = time.monotonic()
        ids = []
        for _ in range(files):
            answer = requests.post(f"{stack.base_url}/api/v1/transcriptions", headers=headers,
                                   json={"source": "external_url", "url": url,
                                         "language": "en", "diarize": diarize},
                                   timeout=30)
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        database = Database(stack.database_url)
        try:
            while True:
                with database.session() as session:
                    rows = session.scalars(select(Transcription)
                                           .where(Transcription.id.in_(ids))).all()
                    if all(row.status in ("completed", "failed") for row in rows):
                        started = min(row.started_at for row in rows)
                        ended = max(row.completed_at for row in rows)
                        statuses: dict[str, int] = {}
                        for row in rows:
                            statuses[row.status] = statuses.get(row.status, 0) + 1
                        break
                if time.monotonic() - wall_start > 3600:
                    raise TimeoutError("the batch took over an hour")
                time.sleep(0.2)
        finally:
            database.dispose()
        wall = time.monotonic() - wall_start
        after = CpuSnapshot.take((worker.pid,))
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.terminate()
        with contextlib.suppress(Exception):
            worker.wait(30)
        stack.processes.remove(worker)  # gone on purpose: not a child that died
    return BatchRun(concurrency=concurrency, seconds=(ended - started).total_seconds(),
                    peak_rss_mb=rss, others_cores=after.others_since(before) / wall,
                    statuses=statuses)


def run(args: Any, cleanup: contextlib.ExitStack) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voxhook-throughput-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    model = build_tiny_whisper(folder / "model", BENCHMARK_SIZE)
    diarization = None
    if args.diarize:
        from tests.support.tiny_pyannote import build_tiny_diarization

        diarization = build_tiny_diarization(folder / "diarization")
    pipelines = folder / "pipelines.toml"
    pipelines.write_text(tiny_pipelines_toml(model, max_new_tokens=args.max_new_tokens,
                                             diarization=diarization))
    media = folder / "media"
    media.mkdir()
    write_repeated_wav(FIXTURE, media / "minute.wav", times=2)
    server = cleanup.enter_context(MediaServer(media))
    redis = EmbeddedRedis(folder / "redis").start()
    cleanup.callback(redis.stop)
    reaper = Reaper()
    cleanup.callback(reaper.reap)
    stack = Stack(data_dir=folder / "data", database_url=f"sqlite:///{folder / 'voxhook.db'}",
                  redis_url=redis.url, pipelines_path=pipelines, api_workers=1,
                  extra_env={"VOXHOOK_WORKER_HEARTBEAT_S": "2",
                             "VOXHOOK_WORKER_LOST_AFTER_S": "60"})
    cleanup.callback(stack.stop)
    stack.start_api()
    reaper.watch(stack.processes[0].pid)
    key = stack.create_key("throughput")
    url = server.url("minute.wav")
    print(f"# bench_throughput: {args.files} one-minute files, one worker process, "
          f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"whisper-tiny-shaped random model, max_new_tokens {args.max_new_tokens}"
          f"{', with diarization' if args.diarize else ''}; load average {load_average()}")
    runs = [run_batch(stack, reaper, key, url, args.files, concurrency, args.diarize)
            for concurrency in args.concurrency]
    base = runs[0]
    print(f"{'concurrency':>11} {'seconds':>8} {'jobs/min':>9} {'vs first':>9} "
          f"{'peak RSS MiB':>13} {'others (cores)':>15}  outcome")
    for batch in runs:
        ratio = batch.jobs_per_minute(args.files) / base.jobs_per_minute(args.files)
        noisy = "  disturbed" if batch.others_cores > NOISY_CORES else ""
        print(f"{batch.concurrency:>11} {batch.seconds:>8.1f} "
              f"{batch.jobs_per_minute(args.files):>9.2f} {ratio:>8.2f}x "
              f"{batch.peak_rss_mb:>13.0f} {batch.others_cores:>15.2f}  "
              f"{batch.statuses}{noisy}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--diarize", action="store_true",
                        help="add the tiny pyannote pipeline and label speakers on every job")
    return run_with_cleanup(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
