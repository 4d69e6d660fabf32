"""How much an upload raises the API process's memory, for each way a file comes in.

Starts a private Redis and the API alone (``voxhook api``: gunicorn with one worker process,
so there is one process to watch; SQLite in a temporary folder; no speech worker, so created
transcriptions just wait in the queue). Then, for each way in:

- ``PUT upload_url``: ``POST /api/v1/uploads``, then a PUT of the raw bytes to the signed URL;
- ``multipart``: ``POST /api/v1/transcriptions`` with a ``file`` part and a form field;
- ``raw body``: ``POST /transcribe?language=en`` with the file as the body;

it sends a baseline file (``--baseline-mb``, 1 MB) and a large one (``--size-mb``, 200 MB),
``--runs`` times each, and samples the gunicorn worker's resident memory (VmRSS) every 2 ms
from before the request until its answer. The rise is the peak minus the reading just
before. The bodies are generated as they are sent (a random 1 MB block repeated), so the
benchmark's own memory stays flat too; the bytes stored are checked by SHA-256.

The target (SPEC, issue "Uploads"): a 200 MB upload raises the API process's memory by less
than 50 MB. Everything runs over loopback on this machine.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_upload_memory [--size-mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from app.ops.embedded_redis import EmbeddedRedis
from benchmarks.procstats import Reaper, load_average, run_with_cleanup
from tests.support.memory import MB, MultipartBody, PatternBody, RssPeak
from tests.support.stack import Stack, tiny_pipelines_toml

#: The target: a 200 MB upload raises the API process's memory by less than this.
TARGET_RISE = 50 * MB
TIMEOUT_S = 600


@dataclass
class Measure:
    way: str
    size: int
    seconds: float
    before: int
    peak: int

    @property
    def rise(self) -> int:
        return self.peak - self.before


def _put(base: str, session: requests.Session, body: PatternBody) -> str:
    created = session.post(f"{base}/api/v1/uploads", json={"filename": "bench.wav"},
                           timeout=TIMEOUT_S)
    created.raise_for_status()
    response = requests.put(created.json()["upload_url"], data=body,
                            headers={"Content-Type": "audio/wav"}, timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.json()["id"]


def _multipart(base: str, session: requests.Session, file: PatternBody) -> str:
    body = MultipartBody({"language": "en"}, file, "bench.wav", "audio/wav")
    response = session.post(f"{base}/api/v1/transcriptions", data=body,
                            headers={"Content-Type": body.content_type}, timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.json()["upload_id"]


def _raw(base: str, session: requests.Session, file: PatternBody) -> str:
    response = session.post(f"{base}/transcribe?language=en", data=file,
                            headers={"Content-Type": "audio/wav"}, timeout=TIMEOUT_S)
    response.raise_for_status()
    polled = session.get(f"{base}/api/v1/transcriptions/{response.json()['id']}",
                         timeout=TIMEOUT_S)
    return polled.json()["upload_id"]


WAYS: dict[str, Callable[[str, requests.Session, PatternBody], str]] = {
    "PUT upload_url": _put,
    "multipart POST /api/v1/transcriptions": _multipart,
    "raw body POST /transcribe": _raw,
}


def measure(way: str, base: str, session: requests.Session, worker_pid: int,
            size: int) -> Measure:
    file = PatternBody(size)
    started = time.monotonic()
    with RssPeak(worker_pid) as rss:
        upload_id = WAYS[way](base, session, file)
    seconds = time.monotonic() - started
    stored = session.get(f"{base}/api/v1/uploads/{upload_id}", timeout=TIMEOUT_S).json()
    if (stored["size_bytes"], stored["sha256"]) != (size, file.sha256):
        raise SystemExit(f"FAILED: {way} stored {stored['size_bytes']} bytes "
                         f"({stored['sha256']}), sent {size} ({file.sha256})")
    return Measure(way, size, seconds, rss.before, rss.peak)


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voxhook-bench-upload-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    redis_server = cleanup.enter_context(EmbeddedRedis(folder / "redis", persist=False))
    pipelines = folder / "pipelines.toml"
    # The API only reads the catalogue; no model is loaded (no worker runs).
    pipelines.write_text(tiny_pipelines_toml(folder / "model-not-loaded"))
    stack = Stack(data_dir=folder / "data", database_url=f"sqlite:///{folder / 'v.db'}",
                  redis_url=redis_server.url, pipelines_path=pipelines, api_workers=1,
                  extra_env={"VOXHOOK_MAX_UPLOAD_MB": str(max(args.size_mb, 1) + 1)})
    reaper = Reaper()
    cleanup.callback(reaper.reap)  # last: whatever Stack.stop could not reach
    cleanup.callback(stack.stop)
    stack.start_api()
    reaper.watch(*(process.pid for process in stack.processes))
    (worker_pid,) = stack.api_worker_pids()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.create_key('bench-upload')}"

    print("Settings")
    print(f"  machine   : {os.cpu_count()} CPU cores, {platform.machine()}, Python "
          f"{platform.python_version()}; load average {load_average()}")
    print(f"  API       : gunicorn, 1 worker process (pid {worker_pid}) x "
          f"{stack.env.get('VOXHOOK_API_THREADS', '4')} threads; SQLite; local storage "
          f"under {folder / 'data' / 'media'}")
    print(f"  files     : baseline {args.baseline_mb} MB, large {args.size_mb} MB, "
          f"{args.runs} run(s) each; VmRSS sampled every 2 ms")
    print()
    for way in WAYS:  # unmeasured: lazy imports and first-use allocations
        for _ in range(2):
            measure(way, stack.base_url, session, worker_pid, MB)

    print(f"{'way in':40} {'size':>7} {'seconds':>8} {'MB/s':>7} {'RSS before':>11} "
          f"{'peak':>8} {'rise':>8}")
    worst: dict[str, Measure] = {}
    for way in WAYS:
        for size_mb in (args.baseline_mb, args.size_mb):
            for _ in range(args.runs):
                m = measure(way, stack.base_url, session, worker_pid, size_mb * MB)
                print(f"{way:40} {size_mb:>4} MB {m.seconds:>8.2f} "
                      f"{size_mb / max(m.seconds, 1e-9):>7.0f} {m.before / MB:>8.1f} MB "
                      f"{m.peak / MB:>5.1f} MB {m.rise / MB:>5.1f} MB")
                if size_mb == args.size_mb and m.rise >= worst.get(way, m).rise:
                    worst[way] = m
    print()
    print(f"Largest rise per way for {args.size_mb} MB (target for 200 MB: < "
          f"{TARGET_RISE // MB} MB):")
    for way, m in worst.items():
        verdict = "met" if m.rise < TARGET_RISE else "NOT MET"
        print(f"  {way:40} {m.rise / MB:6.1f} MB  {verdict}")
    print(f"load average at end (1, 5, 15 min): {load_average()}")
    if any(m.rise >= TARGET_RISE for m in worst.values()):
        raise SystemExit("FAILED: an upload raised the API's memory past the target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200,
                        help="size of the large file, in MB (default 200)")
    parser.add_argument("--baseline-mb", type=int, default=1,
                        help="size of the baseline file, in MB (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="runs per way and size (default 3)")
    args = parser.parse_args(argv)
    if min(args.size_mb, args.baseline_mb, args.runs) < 1 or args.size_mb > 4096:
        parser.error("--size-mb (at most 4096), --baseline-mb and --runs must be >= 1")
    return run_with_cleanup(run, args)


if __name__ == "__main__":
    sys.exit(main())
