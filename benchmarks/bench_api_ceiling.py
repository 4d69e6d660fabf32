"""The API against its framework's ceiling, in one run: ``GET /api/v1/transcriptions/{id}``
and ``POST /transcribe`` vs a bare endpoint on the same gunicorn/Flask set-up.

Starts a private Redis, the API (``voxhook api``: gunicorn with the configured worker class,
processes and connections) with no worker, and beside it the same gunicorn command line
serving ``benchmarks.bare_api:app``: Flask, one indexed SELECT (a transcription by primary key)
on the same database, a constant JSON answer. Then, with ``--clients`` keep-alive clients for
``--seconds`` each, alternately (so drifting load hits all alike): bare GET, API GET, API POST.
Prints requests/s and latency of each, and the ratios to the bare endpoint. Targets (issue
18): GET >= 60 %, POST >= 40 % of the bare endpoint's requests per second.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_api_ceiling [--seconds 8] [--clients 32] [--rounds 2]
    .venv/bin/python -m benchmarks.bench_api_ceiling \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from app.config import Settings
from app.ops.api_process import gunicorn_command
from app.ops.embedded_redis import free_port
from benchmarks.bench_api import (
    MEDIA_URL,
    PhaseResult,
    hammer,
    percentile,
    start_api_under_test,
)
from benchmarks.procstats import Reaper, load_average, run_with_cleanup
from tests.support.stack import REPO, Stack

TARGETS = {"API GET": 0.60, "API POST": 0.40}


def start_bare(stack: Stack, folder: Path, reaper: Reaper) -> tuple[str, subprocess.Popen]:
    """The bare app under the API's own gunicorn command line, on a port of its own."""
    port = free_port()
    command = gunicorn_command(Settings.from_env(stack.env), "127.0.0.1", port)
    command[command.index("app.wsgi:app")] = "benchmarks.bare_api:app"
    log = (folder / "bare.log").open("ab")
    process = subprocess.Popen(command, env=stack.env, cwd=REPO, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/bare/none", timeout=1).ok:
                reaper.watch(process.pid)
                return base, process
        time.sleep(0.2)
    raise RuntimeError("the bare app did not start:\n" + (folder / "bare.log").read_text())


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voxhook-ceiling-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    api = start_api_under_test(folder, cleanup, args.database_url, "voxhook_ceiling",
                               args.api_workers)
    stack = api.stack
    key = stack.create_key("ceiling")
    bare_base, bare = start_bare(stack, folder, api.reaper)
    cleanup.callback(bare.terminate)
    headers = {"Authorization": f"Bearer {key}"}
    ids = [requests.post(f"{stack.base_url}/transcribe", json={"url": MEDIA_URL},
                         headers=headers, timeout=30).json()["id"] for _ in range(50)]
    pids = (stack.processes[0].pid, None)

    def bare_get(session: requests.Session, number: int) -> requests.Response:
        return session.get(f"{bare_base}/bare/{ids[number % len(ids)]}", timeout=30)

    def api_get(session: requests.Session, number: int) -> requests.Response:
        return session.get(f"{stack.base_url}/api/v1/transcriptions/{ids[number % len(ids)]}",
                           timeout=30)

    def api_post(session: requests.Session, _number: int) -> requests.Response:
        return session.post(f"{stack.base_url}/transcribe", json={"url": MEDIA_URL},
                            timeout=30)

    phases = {"bare GET": (bare_get, 200, (bare.pid, None)), "API GET": (api_get, 200, pids),
              "API POST": (api_post, 200, pids)}
    results: dict[str, list[PhaseResult]] = {name: [] for name in phases}
    for request, status, phase_pids in phases.values():  # warm-up
        hammer("warm-up", key, args.clients, 2, 10**6, request, status, phase_pids)
    for _ in range(args.rounds):
        for name, (request, status, phase_pids) in phases.items():
            results[name].append(hammer(name, key, args.clients, args.seconds, 10**6, request,
                                        status, phase_pids))
    settings = Settings.from_env(stack.env)
    print(f"# bench_api_ceiling: {api.database}, gunicorn {settings.api_worker_class} x "
          f"{settings.api_workers} processes, {args.clients} clients, {args.rounds} x "
          f"{args.seconds:g} s per phase, {os.cpu_count()} cores; load average "
          f"{load_average()}")
    print(f"{'phase':<10} {'req/s':>8} {'vs bare':>8} {'target':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'errors':>7} {'others (cores)':>15}")
    rates = {}
    for name, runs in results.items():
        ok = sum(run.ok for run in runs)
        elapsed = sum(run.elapsed_s for run in runs)
        rates[name] = ok / elapsed
        latencies = sorted(value for run in runs for value in run.latencies)
        errors = sum(sum(run.errors.values()) for run in runs)
        others = sum(run.others_cpu_s for run in runs) / elapsed
        ratio = rates[name] / rates["bare GET"]
        target = TARGETS.get(name)
        verdict = "" if target is None else (f"{target:.0%} " + ("met" if ratio >= target
                                                                 else "NOT met"))
        print(f"{name:<10} {rates[name]:>8.0f} {ratio:>7.0%} {verdict:>7} "
              f"{percentile(latencies, 50) * 1000:>7.1f} {percentile(latencies, 99) * 1000:>7.1f}"
              f" {errors:>7} {others:>15.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    return run_with_cleanup(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
