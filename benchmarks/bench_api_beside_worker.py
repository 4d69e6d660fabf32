"""GET latency of the one-command ``voxhook serve`` while its worker transcribes.

Runs ``voxhook serve`` (embedded Redis, SQLite, the API under gunicorn, one transcription
worker, the webhook worker) twice in one run:

- **yielding**: as ``serve`` runs it: the worker niced (``VOXHOOK_WORKER_NICE=10``) and, with
  two cores or more, sized by one core fewer (``VOXHOOK_WORKER_CORES`` = cores - 1), and one
  API process on the core it leaves;
- **not yielding**: ``VOXHOOK_WORKER_NICE=0`` and ``VOXHOOK_WORKER_CORES`` = every core, with
  the default two API processes, as before issue 18.

Each time: one transcription is completed (the one the clients poll), then 8 clients (threads
here, keep-alive sessions) GET ``/api/v1/transcriptions/{id}`` for ``--seconds`` with the
worker idle, and again with the worker busy (ten-minute files queued, one processing for the
whole phase: checked). Prints requests/s and p50/p90/p99/max for each phase, and the CPU other
processes used meanwhile ("disturbed" above a quarter core: the machine had other work). The
model is whisper-tiny-shaped with random weights.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_api_beside_worker [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from app.config import usable_cores
from app.ops.embedded_redis import free_port
from benchmarks.bench_api import PhaseResult, hammer, percentile
from benchmarks.procstats import load_average, run_with_cleanup
from tests.conftest import write_repeated_wav
from tests.support.media_server import MediaServer
from tests.support.stack import REPO, tiny_pipelines_toml
from tests.support.tiny_whisper import BENCHMARK_SIZE, build_tiny_whisper

FIXTURE = REPO / "tests" / "fixtures" / "sample.wav"
NOISY_CORES = 0.25
TARGET_P99_MS = 50.0


@dataclass
class Phase:
    variant: str
    worker: str
    result: PhaseResult


def measure_variant(name: str, extra_env: dict[str, str], folder: Path, pipelines: Path,
                    server: MediaServer, args: Any) -> list[Phase]:
    data = folder / f"data-{name.replace(' ', '-')}"
    port = free_port()
    env = {**os.environ, "VOXHOOK_DATA_DIR": str(data), "VOXHOOK_PIPELINES": str(pipelines),
           "VOXHOOK_FETCH_ALLOWLIST": "127.0.0.1", "HF_HUB_OFFLINE": "1", **extra_env}
    env.pop("VOXHOOK_DATABASE_URL", None)
    env.pop("VOXHOOK_REDIS_URL", None)
    data.mkdir(parents=True)
    log = (data.parent / f"serve-{name.replace(' ', '-')}.log").open("w")
    serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                             env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not become ready:\n"
                                   + Path(log.name).read_text()[-3000:])
            time.sleep(0.2)
        key = subprocess.run([sys.executable, "-m", "app", "keys", "create", "--name", "b"],
                             env=env, cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}

        def create(url: str) -> str:
            answer = requests.post(f"{base}/api/v1/transcriptions", headers=headers, timeout=30,
                                   json={"source": "external_url", "url": url,
                                         "language": "en"})
            answer.raise_for_status()
            return answer.json()["id"]

        def status(tid: str) -> str:
            return requests.get(f"{base}/api/v1/transcriptions/{tid}", headers=headers,
                                timeout=30).json()["status"]

        target = create(server.url("short.wav"))
        while status(target) not in ("completed", "failed"):
            time.sleep(0.2)

        def poll(session: requests.Session, _number: int) -> requests.Response:
            return session.get(f"{base}/api/v1/transcriptions/{target}", timeout=30)

        hammer("warm-up", key, args.clients, 2, 10**6, poll, 200, (None, None))
        idle = hammer("idle", key, args.clients, args.seconds, 10**6, poll, 200,
                      (serve.pid, None))
        busy_ids = [create(server.url("long.wav")) for _ in range(args.busy_jobs)]
        while not any(status(tid) == "processing" for tid in busy_ids):
            time.sleep(0.2)
        time.sleep(2)  # past the job's start: decoding, model warm
        busy = hammer("busy", key, args.clients, args.seconds, 10**6, poll, 200,
                      (serve.pid, None))
        still = [status(tid) for tid in busy_ids]
        if "processing" not in still:
            print(f"  warning: no job was processing at the end of the busy phase ({still}); "
                  "raise --busy-jobs", file=sys.stderr)
        return [Phase(name, "idle", idle), Phase(name, "busy", busy)]
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()


def run(args: Any, cleanup: contextlib.ExitStack) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voxhook-beside-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    model = build_tiny_whisper(folder / "model", BENCHMARK_SIZE)
    pipelines = folder / "pipelines.toml"
    pipelines.write_text(tiny_pipelines_toml(model, max_new_tokens=48))
    media = folder / "media"
    media.mkdir()
    shutil.copy(FIXTURE, media / "short.wav")
    write_repeated_wav(FIXTURE, media / "long.wav", times=20)
    server = cleanup.enter_context(MediaServer(media))
    count = usable_cores()
    print(f"# bench_api_beside_worker: voxhook serve, {count} cores, {args.clients} clients "
          f"GET /api/v1/transcriptions/{{id}}, {args.seconds:g} s per phase; load average "
          f"{load_average()}")
    phases = []
    for name, env in (("yielding", {}),
                      ("not yielding", {"VOXHOOK_WORKER_NICE": "0",
                                        "VOXHOOK_WORKER_CORES": str(count)})):
        phases += measure_variant(name, env, folder, pipelines, server, args)
    print(f"{'worker':<14} {'phase':<6} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'others (cores)':>15}")
    for phase in phases:
        result = phase.result
        values = sorted(result.latencies)
        others = result.others_cpu_s / result.elapsed_s
        flags = "  disturbed" if others > NOISY_CORES else ""
        if result.errors:
            flags += f"  errors {dict(result.errors)}"
        print(f"{phase.variant:<14} {phase.worker:<6} {result.ok / result.elapsed_s:>7.0f} "
              + " ".join(f"{percentile(values, p) * 1000:>7.1f}" for p in (50, 90, 99, 100))
              + f" {others:>15.2f}{flags}")
    yielding_busy = next(p for p in phases if p.variant == "yielding" and p.worker == "busy")
    p99 = percentile(sorted(yielding_busy.result.latencies), 99) * 1000
    print(f"yielding, worker busy: p99 {p99:.1f} ms (target <= {TARGET_P99_MS:.0f} ms): "
          f"{'met' if p99 <= TARGET_P99_MS else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--busy-jobs", type=int, default=3,
                        help="ten-minute files queued to keep the worker busy (default 3)")
    return run_with_cleanup(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
