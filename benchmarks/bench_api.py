"""Throughput and latency of the HTTP API through gunicorn, on this machine.

Starts a private Redis and the API (``voxhook api``: gunicorn, VOXHOOK_API_WORKERS processes x
VOXHOOK_API_THREADS threads) with no worker, so created jobs just wait in the queue. Then, with
32 concurrent clients (threads of this process, each with its own ``requests.Session`` and
keep-alive connection), for a fixed time:

(a) ``POST /transcribe``: transcription creations per second (auth, validation, a database
    insert, an RQ enqueue), with p50/p90/p99 latency and the error count (must be 0);
(b) ``GET /transcribe/{id}`` on the ids created in (a): requests per second and latency.

Each phase is bounded in time (``--seconds``) and in count (``--max-requests``) and only talks to
loopback. The load generator shares the machine's cores with the server; its CPU use is
printed so the figures can be read accordingly.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_api [--seconds 10] [--clients 32]
    .venv/bin/python -m benchmarks.bench_api \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With ``--database-url postgresql...`` a fresh database is created on that server for the run
and dropped afterwards (the URL's own database is only used to connect).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from redis import Redis
from rq import Queue

from app.config import Settings
from app.ops.embedded_redis import EmbeddedRedis
from benchmarks.procstats import (
    Reaper,
    load_average,
    machine_busy_s,
    process_tree_cpu_s,
    run_with_cleanup,
)
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.stack import Stack, tiny_pipelines_toml

#: A URL that passes validation; nothing fetches it (no worker runs).
MEDIA_URL = "http://127.0.0.1:9/never-fetched.wav"
REQUEST_TIMEOUT_S = 30

Request = Callable[[requests.Session, int], requests.Response]


@dataclass
class PhaseResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    api_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    #: CPU seconds used meanwhile by processes that are not the benchmark's.
    others_cpu_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return self.count - sum(self.errors.values())


# --------------------------------------------------------------------------- measuring


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def hammer(name: str, key: str, clients: int, seconds: float, max_requests: int,
           request: Request, expected_status: int, pids: tuple[int | None, int | None],
           keep_ids: bool = False) -> PhaseResult:
    """Run ``request`` from ``clients`` threads until ``seconds`` pass or ``max_requests``
    have been sent; every thread has its own session (and keep-alive connection)."""
    result = PhaseResult(name)
    numbers = itertools.count()  # next() on it is atomic under the GIL
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        ids: list[str] = []
        try:
            barrier.wait()
            while not stop.is_set() and time.perf_counter() < deadline[0]:
                number = next(numbers)
                if number >= max_requests:
                    break
                start = time.perf_counter()
                try:
                    response = request(session, number)
                    latencies.append(time.perf_counter() - start)
                    if response.status_code != expected_status:
                        errors[f"HTTP {response.status_code}"] += 1
                    elif keep_ids:
                        ids.append(response.json()["id"])
                except requests.RequestException as exc:
                    latencies.append(time.perf_counter() - start)
                    errors[type(exc).__name__] += 1
        except threading.BrokenBarrierError:
            pass
        finally:
            session.close()
            with lock:
                result.latencies += latencies
                result.errors += errors
                result.ids += ids

    threads = [threading.Thread(target=client, name=f"{name}-{i}", daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    api_pid, redis_pid = pids
    try:
        cpu_before = (time.process_time(), process_tree_cpu_s(api_pid),
                      process_tree_cpu_s(redis_pid), machine_busy_s())
        start = time.perf_counter()
        deadline[0] = start + seconds
        barrier.wait()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        result.elapsed_s = time.perf_counter() - start
        result.client_cpu_s = time.process_time() - cpu_before[0]
        result.api_cpu_s = process_tree_cpu_s(api_pid) - cpu_before[1]
        result.redis_cpu_s = process_tree_cpu_s(redis_pid) - cpu_before[2]
        result.others_cpu_s = max(0.0, machine_busy_s() - cpu_before[3] - result.client_cpu_s
                                  - result.api_cpu_s - result.redis_cpu_s)
    finally:
        stop.set()
        barrier.abort()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT_S + 5)
    return result


def report(result: PhaseResult, unit: str, others: str) -> None:
    values = sorted(result.latencies)
    rate = result.ok / result.elapsed_s if result.elapsed_s else math.nan
    print(f"  requests      : {result.count} in {result.elapsed_s:.2f} s "
          f"({result.ok} ok) -> {rate:.1f} {unit}/s")
    print("  latency (ms)  : " + "  ".join(
        f"{label} {percentile(values, p) * 1000:.1f}"
        for label, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))))
    errors = sum(result.errors.values())
    detail = f" ({', '.join(f'{k}: {v}' for k, v in result.errors.most_common())})" if errors \
        else ""
    print(f"  errors        : {errors}{detail}")
    elapsed = result.elapsed_s or math.nan
    print(f"  CPU seconds   : API {result.api_cpu_s:.2f} ({result.api_cpu_s / elapsed:.2f} cores), "
          f"Redis {result.redis_cpu_s:.2f}, load generator {result.client_cpu_s:.2f} "
          f"({result.client_cpu_s / elapsed:.2f} cores) of {os.cpu_count()} cores; "
          f"{others} {result.others_cpu_s / elapsed:.2f} cores")
    if result.ok:
        print(f"  API CPU/request: {result.api_cpu_s / result.ok * 1000:.2f} ms")


# --------------------------------------------------------------------------- databases


# --------------------------------------------------------------------------- the run


@dataclass
class ApiUnderTest:
    """The API a benchmark measures: its stack (started), its Redis, the reaper that kills on
    cleanup whatever else the benchmark starts and hands it, and what database it runs on,
    in words for the report."""

    stack: Stack
    redis: EmbeddedRedis
    reaper: Reaper
    database_url: str
    database: str


def start_api_under_test(folder: Path, cleanup: contextlib.ExitStack,
                         database_url: str | None,
                         database_name: str, api_workers: int,
                         extra_env: dict[str, str] | None = None) -> ApiUnderTest:
    """Start the API alone (no worker: created jobs queue up) over a private Redis, on a
    fresh PostgreSQL database named after ``database_name`` when ``database_url`` names a
    PostgreSQL server (dropped on cleanup), on ``database_url`` as given otherwise, or on
    SQLite in ``folder``. Everything it starts is stopped by ``cleanup``."""
    if database_url and database_url.startswith("postgresql"):
        url = create_postgres_database(database_url, database_name)
        cleanup.callback(drop_postgres_database, database_url, url)
        database = f"PostgreSQL, fresh database {url.rsplit('/', 1)[1]} (dropped after)"
    elif database_url:
        url = database_url
        database = f"as given: {url}"
    else:
        url = f"sqlite:///{folder / 'voxhook.db'}"
        database = "SQLite (WAL) in a temporary folder"

    redis_server = cleanup.enter_context(EmbeddedRedis(folder / "redis", persist=False))
    pipelines = folder / "pipelines.toml"
    # The API only reads the catalogue; no model is loaded (no worker runs).
    pipelines.write_text(tiny_pipelines_toml(folder / "model-not-loaded"))
    stack = Stack(data_dir=folder / "data", database_url=url, redis_url=redis_server.url,
                  pipelines_path=pipelines, api_workers=api_workers,
                  extra_env=extra_env or {})
    reaper = Reaper()
    cleanup.callback(reaper.reap)  # last: whatever Stack.stop could not reach
    cleanup.callback(stack.stop)
    cleanup.callback(lambda: reaper.watch(*(process.pid for process in stack.processes)))
    stack.start_api()
    reaper.watch(*(process.pid for process in stack.processes))
    return ApiUnderTest(stack, redis_server, reaper, url, database)


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voxhook-bench-api-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    api = start_api_under_test(folder, cleanup, args.database_url, "voxhook_bench",
                               args.api_workers,
                               {"VOXHOOK_API_THREADS": str(args.api_threads)})
    stack, redis_server = api.stack, api.redis
    key = stack.create_key("bench-api")
    api_pid = stack.processes[0].pid
    redis_pid = redis_server.process.pid if redis_server.process else None

    env = stack.env
    print("Settings")
    print(f"  machine            : {os.cpu_count()} CPU cores, {platform.machine()}, Python "
          f"{platform.python_version()}; load average {load_average()}")
    print(f"  VOXHOOK_API_WORKERS: {env['VOXHOOK_API_WORKERS']}")
    print(f"  VOXHOOK_API_THREADS: {env['VOXHOOK_API_THREADS']}")
    print(f"  gunicorn           : {' '.join(_gunicorn_flags(stack))}")
    print(f"  database           : {api.database}")
    print("  Redis              : embedded redis-server, no persistence; no worker (jobs queue up)")
    print(f"  clients            : {args.clients} threads in this process, one requests.Session "
          "each (keep-alive)")
    print(f"  each phase         : {args.seconds:g} s or {args.max_requests} requests, whichever "
          f"first; {args.warmup_seconds:g} s unmeasured warm-up first")
    print()

    pids = (api_pid, redis_pid)
    others = ("other processes (the PostgreSQL server's included)"
              if api.database_url.startswith("postgresql") else "other processes")
    body = {"url": MEDIA_URL}

    def create(session: requests.Session, _number: int) -> requests.Response:
        return session.post(f"{stack.base_url}/transcribe", json=body, timeout=REQUEST_TIMEOUT_S)

    hammer("warm-up", key, args.clients, args.warmup_seconds, args.max_requests, create, 200,
           pids)
    # The queue the API enqueues on, as the API reads it from its environment.
    queue = Queue(Settings.from_env(stack.env).queue_name,
                  connection=Redis.from_url(redis_server.url))
    cleanup.callback(queue.connection.close)
    queued_before = queue.count
    created = hammer("create", key, args.clients, args.seconds, args.max_requests, create, 200,
                     pids, keep_ids=True)
    queued = queue.count - queued_before
    print("(a) POST /transcribe: transcription creations")
    report(created, "creations", others)
    print(f"  jobs queued   : {queued} (expected {created.ok})")
    print()
    if not created.ids:
        raise RuntimeError("no transcription was created; see the API log:\n"
                           + stack.log("api")[-3000:])

    ids = created.ids

    def poll(session: requests.Session, number: int) -> requests.Response:
        return session.get(f"{stack.base_url}/transcribe/{ids[number % len(ids)]}",
                           timeout=REQUEST_TIMEOUT_S)

    hammer("warm-up", key, args.clients, args.warmup_seconds, args.max_requests, poll, 200, pids)
    polled = hammer("get", key, args.clients, args.seconds, args.max_requests, poll, 200, pids)
    print(f"(b) GET /transcribe/{{id}} on {len(ids)} existing ids")
    report(polled, "requests", others)
    print()
    print(f"load average at end (1, 5, 15 min): {load_average()}")
    failed = sum(created.errors.values()) + sum(polled.errors.values())
    if failed or queued != created.ok:
        raise SystemExit(f"FAILED: {failed} errors, {queued} jobs queued for {created.ok} "
                         "creations")


def _gunicorn_flags(stack: Stack) -> list[str]:
    from app.ops.api_process import gunicorn_command

    settings = Settings.from_env(stack.env)
    command = gunicorn_command(settings, "127.0.0.1", stack.port)
    return command[command.index("app.wsgi:app"):]




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each measured phase (default 10)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="at most this many requests per phase (default 100000)")
    parser.add_argument("--clients", type=int, default=32,
                        help="concurrent client threads (default 32)")
    parser.add_argument("--warmup-seconds", type=float, default=2.0,
                        help="unmeasured load before each phase (default 2)")
    parser.add_argument("--api-workers", type=int, default=2,
                        help="VOXHOOK_API_WORKERS, gunicorn processes (default 2)")
    parser.add_argument("--api-threads", type=int, default=4,
                        help="VOXHOOK_API_THREADS, threads per process (default 4)")
    parser.add_argument("--database-url", default=None,
                        help="postgresql+psycopg://... : run on a fresh database on that server "
                        "(dropped after); default: SQLite in a temporary folder")
    args = parser.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 <= args.warmup_seconds <= 60):
        parser.error("--seconds must be in (0, 600] and --warmup-seconds in [0, 60]")
    if min(args.clients, args.max_requests, args.api_workers, args.api_threads) < 1:
        parser.error("--clients, --max-requests, --api-workers, --api-threads must be >= 1")
    return run_with_cleanup(run, args)


if __name__ == "__main__":
    sys.exit(main())
