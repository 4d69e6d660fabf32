"""POST-to-completed latency of the service, over calling faster-whisper directly.

For a 60 s clip (``tests/fixtures/sample.wav`` twice), alternately:

(a) direct: one ``WhisperModel`` loaded up front in this process; the time of
    ``list(model.transcribe(path, ..., word_timestamps=True)[0])``, decoding the file included;
(b) service: the time from ``POST /transcribe`` to the poll (every 20 ms) that sees
    ``completed``, with the real API (gunicorn) and one worker as processes, the clip served
    over loopback HTTP.

Both use the same whisper-tiny-shaped random model and the same decoding options. They run
strictly one after the other, so they never share the CPU. The target is
``median(service) / median(direct) <= 1.10``. Where the service's time goes is split up
from the transcription's timestamps (v1 ``created_at``/``started_at``/``completed_at``) and the
worker's log lines. The CPU seconds of the direct run, the worker, the API processes and the
polling client are measured too (Linux ``/proc``), and so is the CPU used meanwhile by anything
else on the machine: a run disturbed by other load is marked.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_latency [--runs 5] [--poll-interval 0.02]
        [--client requests|http.client] [--max-new-tokens auto|unset|N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from redis import Redis
from rq.job import Job

from app.ops.embedded_redis import EmbeddedRedis
from benchmarks.procstats import CpuSnapshot, Reaper, load_average, run_with_cleanup
from tests.support.media_server import MediaServer
from tests.support.stack import REPO, Stack
from tests.support.tiny_whisper import BENCHMARK_SIZE, build_tiny_whisper

FIXTURE = REPO / "tests" / "fixtures" / "sample.wav"
CLIP_SECONDS = 60.0
TARGET_RATIO = 1.10
#: Above this many seconds per direct run, max_new_tokens is capped (--max-new-tokens auto).
SLOW_RUN_S = 60.0
#: The cap used then (what the test-suite uses).
FALLBACK_MAX_NEW_TOKENS = 48
#: The pipeline's decoding, passed identically to the direct call. condition_on_previous_text
#: is the pipeline default (and faster-whisper's); the worker passes it explicitly.
DECODING: dict[str, Any] = {"beam_size": 1, "temperature": 0.0, "vad_filter": True,
                            "condition_on_previous_text": True}
#: Other processes using more than this many cores during a run make it "disturbed".
NOISY_CORES = 0.25
#: asctime of Python's logging, as the worker writes it.
LOG_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"


@dataclass
class ServiceRun:
    seconds: float
    post_s: float
    polls: int
    #: Wall clock (time.time) when the POST was sent and when the poll saw completion.
    sent_at: float
    seen_at: float
    #: From the v1 GET (UTC, same machine clock).
    created_at: float
    started_at: float
    completed_at: float
    #: From the worker's log (None when a line was not found).
    decoded_at: float | None = None
    logged_done_at: float | None = None
    #: CPU seconds spent during the run by the worker, the API processes and this process
    #: (the polling client and the media server thread).
    worker_cpu_s: float = 0.0
    api_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    #: Cores used on average by processes outside this benchmark during the run.
    others_cores: float = 0.0

    @property
    def before_row_s(self) -> float:
        """POST sent -> row's created_at (HTTP, auth, validation in the API)."""
        return self.created_at - self.sent_at

    @property
    def queue_s(self) -> float:
        """created_at -> started_at: insert commit, enqueue, POST reply, RQ dequeue, job set-up."""
        return self.started_at - self.created_at

    @property
    def processing_s(self) -> float:
        """started_at -> completed_at: download, decode, transcribe, assemble, DB writes."""
        return self.completed_at - self.started_at

    @property
    def seen_after_s(self) -> float:
        """completed_at -> the poll that saw it (poll interval, GET latency)."""
        return self.seen_at - self.completed_at

    @property
    def fetch_decode_s(self) -> float | None:
        if self.decoded_at is None:
            return None
        return self.decoded_at - self.started_at

    @property
    def transcribe_store_s(self) -> float | None:
        if self.decoded_at is None:
            return None
        return self.completed_at - self.decoded_at


def make_clip(folder: Path) -> Path:
    """sample.wav twice, as one 60.0 s 16 kHz mono PCM16 file."""
    with wave.open(str(FIXTURE), "rb") as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    path = folder / "clip60.wav"
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(params.nchannels)
        sink.setsampwidth(params.sampwidth)
        sink.setframerate(params.framerate)
        sink.writeframes(frames + frames)
    with wave.open(str(path), "rb") as check:
        duration = check.getnframes() / check.getframerate()
    if abs(duration - CLIP_SECONDS) > 1e-9:
        raise RuntimeError(f"the clip is {duration} s, not {CLIP_SECONDS} s")
    return path


def pipelines_toml(model_dir: Path, max_new_tokens: int | None) -> str:
    cap = "" if max_new_tokens is None else f"max_new_tokens = {max_new_tokens}\n"
    return f'''default_pipeline = "bench"
[[pipeline]]
code = "bench"
description = "whisper-tiny-shaped random model (benchmark)"
model = "{model_dir}"
device = "cpu"
compute_type = "int8"
price_per_minute_usd = "0.0285"
[pipeline.decoding]
beam_size = {DECODING["beam_size"]}
temperature = {DECODING["temperature"]}
vad_filter = {str(DECODING["vad_filter"]).lower()}
condition_on_previous_text = {str(DECODING["condition_on_previous_text"]).lower()}
{cap}'''


@dataclass
class DirectRun:
    seconds: float
    cpu_s: float
    segments: int
    words: int
    others_cores: float = 0.0


def direct_run(model: Any, path: Path, options: dict[str, Any],
               ours: tuple[int, ...] = ()) -> DirectRun:
    """One transcription, decoding the file included: wall and CPU seconds, segments, words.

    ``ours``: the benchmark's other processes, so that CPU used by anything else on the
    machine meanwhile can be told apart.
    """
    before = CpuSnapshot.take(ours)
    start = time.perf_counter()
    segments, _info = model.transcribe(str(path), word_timestamps=True, **options)
    segments = list(segments)
    seconds = time.perf_counter() - start
    after = CpuSnapshot.take(ours)
    return DirectRun(seconds=seconds, cpu_s=after.bench - before.bench, segments=len(segments),
                     words=sum(len(s.words or ()) for s in segments),
                     others_cores=after.others_since(before) / seconds)


def _utc(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _log_time(stamp: str) -> float:
    # The worker logs local time; time.mktime reads it back in the same zone.
    parsed = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
    return time.mktime(parsed.timetuple()) + parsed.microsecond / 1e6


class HttpClient:
    """The benchmark's API client: ``requests`` (what a user's script uses, the default) or
    the stdlib's ``http.client`` (about a quarter of the client CPU per request, so the
    polling client disturbs the engine less on a small machine)."""

    def __init__(self, base_url: str, key: str, kind: str) -> None:
        self.base_url, self.kind = base_url, kind
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.session = requests.Session()
        self.session.headers.update(self.headers)
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """JSON answer of a request; raises on a non-2xx status."""
        if self.kind == "requests":
            response = self.session.request(method, self.base_url + path, json=body, timeout=30)
            response.raise_for_status()
            return response.json()
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):  # once more on a fresh connection if keep-alive lapsed
            if self.connection is None:
                host, port = self.base_url.removeprefix("http://").split(":")
                self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                self.connection.request(method, path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
        self.session.close()


def service_run(stack: Stack, client: HttpClient, redis: Redis, url: str,
                poll_s: float, timeout_s: float, redis_pid: int) -> ServiceRun:
    api_pid, worker_pid = (process.pid for process in stack.processes)
    ours = (worker_pid, api_pid, redis_pid)
    before = CpuSnapshot.take(ours)
    sent_at = time.time()
    start = time.perf_counter()
    transcription_id = client.request("POST", "/transcribe", {"url": url})["id"]
    post_s = time.perf_counter() - start
    polls = 0
    while True:
        body = client.request("GET", f"/transcribe/{transcription_id}")
        polls += 1
        if body["status"] in ("completed", "failed"):
            break
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"{transcription_id} not finished after {timeout_s} s")
        time.sleep(poll_s)
    seconds = time.perf_counter() - start
    seen_at = time.time()
    after = CpuSnapshot.take(ours)
    if body["status"] != "completed":
        raise RuntimeError(f"transcription failed: {body.get('error_code')}: {body.get('error')}")

    # Not timed: the timestamps, and the worker being really idle before the next run.
    v1 = client.request("GET", f"/api/v1/transcriptions/{transcription_id}")
    _wait_job_done(redis, transcription_id)
    run = ServiceRun(seconds=seconds, post_s=post_s, polls=polls, sent_at=sent_at,
                     seen_at=seen_at, created_at=_utc(v1["created_at"]),
                     started_at=_utc(v1["started_at"]), completed_at=_utc(v1["completed_at"]),
                     worker_cpu_s=after.trees[0] - before.trees[0],
                     api_cpu_s=after.trees[1] - before.trees[1],
                     client_cpu_s=after.bench - before.bench,
                     others_cores=after.others_since(before) / seconds)
    _add_log_times(run, stack.log("worker"), transcription_id)
    return run


def _wait_job_done(redis: Redis, job_id: str, timeout_s: float = 30) -> None:
    """Until RQ has finished its bookkeeping for the job (the worker is idle again)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Job.fetch(job_id, connection=redis).get_status(refresh=True)
        if status in ("finished", "failed"):
            return
        time.sleep(0.01)
    raise TimeoutError(f"RQ job {job_id} still not finished")


def _add_log_times(run: ServiceRun, log: str, transcription_id: str) -> None:
    """Take 'decoded' and 'completed' times from the worker's log lines for this job.

    The log has millisecond stamps; differences between them and the database's timestamps
    are good to about a millisecond.
    """
    tid = re.escape(transcription_id)
    decoded = re.search(rf"^{LOG_TIME} \S+ worker\.pipeline: transcription {tid}: .*decoded",
                        log, re.MULTILINE)
    done = re.search(rf"^{LOG_TIME} \S+ worker\.jobs: transcription {tid} completed",
                     log, re.MULTILINE)
    if decoded:
        run.decoded_at = _log_time(decoded.group(1))
    if done:
        run.logged_done_at = _log_time(done.group(1))


def median(values: list[float]) -> float:
    return statistics.median(values)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def print_settings(args: argparse.Namespace, max_new_tokens: int | None, reason: str,
                   stack: Stack) -> None:
    import ctranslate2
    import faster_whisper

    print("Settings")
    print(f"  machine        : {os.cpu_count()} CPU cores, {platform.machine()}, "
          f"CUDA devices: {ctranslate2.get_cuda_device_count()}")
    print(f"  versions       : faster-whisper {faster_whisper.__version__}, "
          f"ctranslate2 {ctranslate2.__version__}, Python {platform.python_version()}")
    print(f"  model          : BENCHMARK_SIZE (whisper-tiny shape, random weights) "
          f"{BENCHMARK_SIZE}")
    print("  device/compute : cpu / int8")
    print(f"  decoding       : {DECODING}, word_timestamps=True, language detected")
    print(f"  max_new_tokens : {max_new_tokens if max_new_tokens else 'unset'} ({reason})")
    print(f"  clip           : {CLIP_SECONDS:.1f} s, 16 kHz mono PCM16 WAV (sample.wav twice)")
    print(f"  service        : SQLite, 1 worker, API {stack.api_workers} gunicorn processes x "
          f"{stack.env.get('VOXHOOK_API_THREADS', '4')} threads; clip over loopback HTTP")
    print(f"  runs           : {args.runs} (+{args.warmup} warm-up each), poll interval "
          f"{args.poll_interval * 1000:.0f} ms, client {args.client} (on this machine)")
    print()


def print_results(direct: list[DirectRun], service: list[ServiceRun]) -> None:
    print()
    print("Wall clock per run (seconds unless ms)")
    header = (f"{'run':>3} {'direct':>7} {'service':>8} {'ratio':>6} | {'POST':>6} "
              f"{'->row':>6} {'queue':>6} {'fetch+decode':>12} {'transcribe+store':>16} "
              f"{'seen after':>10} {'polls':>5} | {'others':>13}")
    print(header)
    print(f"{'':>3} {'s':>7} {'s':>8} {'':>6} | {'ms':>6} {'ms':>6} {'ms':>6} {'ms':>12} "
          f"{'s':>16} {'ms':>10} {'':>5} | {'cores d / s':>13}")
    print("-" * len(header))
    noisy = 0
    for index, (d, s) in enumerate(zip(direct, service, strict=True), 1):
        transcribe = s.transcribe_store_s
        flag = "*" if max(d.others_cores, s.others_cores) > NOISY_CORES else ""
        noisy += bool(flag)
        print(f"{index:>3} {d.seconds:7.3f} {s.seconds:8.3f} {s.seconds / d.seconds:6.3f} | "
              f"{s.post_s * 1000:6.1f} {_ms(s.before_row_s):>6} {_ms(s.queue_s):>6} "
              f"{_ms(s.fetch_decode_s):>12} "
              f"{'-' if transcribe is None else f'{transcribe:.3f}':>16} "
              f"{_ms(s.seen_after_s):>10} {s.polls:>5} | "
              f"{d.others_cores:5.2f} / {s.others_cores:4.2f}{flag}")
    print("  others: cores used on average by processes outside the benchmark during the "
          f"direct / service run; * = above {NOISY_CORES} (that run was disturbed)")
    print()
    print("CPU seconds per run (user + system)")
    header = (f"{'run':>3} {'direct':>7} {'worker':>7} {'API':>6} {'client':>7} "
              f"{'(worker+API)/direct':>20}")
    print(header)
    print("-" * len(header))
    for index, (d, s) in enumerate(zip(direct, service, strict=True), 1):
        print(f"{index:>3} {d.cpu_s:7.2f} {s.worker_cpu_s:7.2f} {s.api_cpu_s:6.2f} "
              f"{s.client_cpu_s:7.2f} {(s.worker_cpu_s + s.api_cpu_s) / d.cpu_s:20.3f}")

    med_direct = median([d.seconds for d in direct])
    med_service = median([s.seconds for s in service])
    ratio = med_service / med_direct
    print()
    print(f"median direct   : {med_direct:.3f} s")
    print(f"median service  : {med_service:.3f} s")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"ratio           : {ratio:.3f}  (target <= {TARGET_RATIO:.2f}: {verdict})")
    best = min(s.seconds for s in service) / min(d.seconds for d in direct)
    print(f"ratio of minima : {best:.3f}  (best service run / best direct run)")
    if noisy:
        print(f"WARNING         : {noisy} of {len(direct)} runs were disturbed by other load "
              "on the machine (marked *); rerun on a quiet machine for figures to rely on")
    cpu_direct = median([d.cpu_s for d in direct])
    cpu_service = median([s.worker_cpu_s + s.api_cpu_s for s in service])
    print(f"CPU ratio       : {cpu_service / cpu_direct:.3f}  (median worker+API CPU "
          f"{cpu_service:.2f} s / median direct CPU {cpu_direct:.2f} s; less sensitive to "
          "other load on the machine than wall clock)")
    print()
    print("Where the service's extra time goes (median of each part, ms):")
    parts = [
        ("POST sent -> row created_at (HTTP, auth, validation)", [s.before_row_s for s in service]),
        ("created_at -> started_at (insert, enqueue, POST reply, RQ dequeue, job set-up)",
         [s.queue_s for s in service]),
        ("started_at -> decoded (download over loopback + decode; the direct run decodes too)",
         [s.fetch_decode_s for s in service if s.fetch_decode_s is not None]),
        ("decoded -> completed_at, minus the whole direct run (engine on samples while the "
         "API answers polls, assemble, DB writes)",
         [s.transcribe_store_s - d.seconds for s, d in zip(service, direct, strict=True)
          if s.transcribe_store_s is not None]),
        ("completed_at -> the poll saw it (poll interval, GET)", [s.seen_after_s for s in service]),
    ]
    for label, values in parts:
        if values:
            print(f"  {median(values) * 1000:8.1f}  {label}")
    print(f"  {(med_service - med_direct) * 1000:8.1f}  = median service - median direct (the "
          "medians of the parts need not add up to it)")




def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> None:
    from faster_whisper import WhisperModel

    print(f"load average at start (1, 5, 15 min): {load_average()}")
    folder = Path(tempfile.mkdtemp(prefix="voxhook-bench-latency-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    media = folder / "media"
    media.mkdir()
    clip = make_clip(media)

    started = time.perf_counter()
    model_dir = build_tiny_whisper(folder / "whisper-tiny-shape", BENCHMARK_SIZE)
    print(f"model built in {time.perf_counter() - started:.1f} s")
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")

    # Warm-up with max_new_tokens unset; decides the setting of every later run.
    options = dict(DECODING)
    max_new_tokens: int | None = None
    first = direct_run(model, clip, options)
    print(f"direct warm-up, max_new_tokens unset: {first.seconds:.3f} s "
          f"({first.segments} segments, {first.words} words)")
    if args.max_new_tokens == "auto":
        if first.seconds > SLOW_RUN_S:
            max_new_tokens = FALLBACK_MAX_NEW_TOKENS
            reason = f"capped: a run took {first.seconds:.1f} s > {SLOW_RUN_S:.0f} s unset"
        else:
            reason = f"left unset: a run takes {first.seconds:.1f} s <= {SLOW_RUN_S:.0f} s"
    elif args.max_new_tokens == "unset":
        reason = "unset by --max-new-tokens"
    else:
        max_new_tokens = int(args.max_new_tokens)
        reason = "set by --max-new-tokens"
    if max_new_tokens is not None:
        options["max_new_tokens"] = max_new_tokens
    for _ in range(args.warmup - 1 if max_new_tokens is None else args.warmup):
        direct_run(model, clip, options)

    pipelines = folder / "pipelines.toml"
    pipelines.write_text(pipelines_toml(model_dir, max_new_tokens))
    redis_server = cleanup.enter_context(EmbeddedRedis(folder / "redis", persist=False))
    server = cleanup.enter_context(MediaServer(media))
    stack = Stack(data_dir=folder / "data", database_url=f"sqlite:///{folder / 'voxhook.db'}",
                  redis_url=redis_server.url, pipelines_path=pipelines,
                  extra_env={"VOXHOOK_API_THREADS": "4"})
    reaper = Reaper()
    cleanup.callback(reaper.reap)  # last: whatever Stack.stop could not reach
    cleanup.callback(stack.stop)
    cleanup.callback(lambda: reaper.watch(*(process.pid for process in stack.processes)))
    stack.start_api()
    stack.start_worker()
    stack.wait_ready(timeout_s=120)
    reaper.watch(*(process.pid for process in stack.processes))
    key = stack.create_key("bench-latency")
    print_settings(args, max_new_tokens, reason, stack)

    client = cleanup.enter_context(HttpClient(stack.base_url, key, args.client))
    redis = Redis.from_url(redis_server.url)
    cleanup.callback(redis.close)
    url = server.url(clip.name)
    redis_pid = redis_server.process.pid if redis_server.process else 0
    ours = (*(process.pid for process in stack.processes), redis_pid)
    timeout_s = max(600.0, 20 * first.seconds)
    for index in range(args.warmup):
        warm = service_run(stack, client, redis, url, args.poll_interval, timeout_s,
                           redis_pid)
        print(f"service warm-up {index + 1}: {warm.seconds:.3f} s")

    direct: list[DirectRun] = []
    service: list[ServiceRun] = []
    for index in range(args.runs):
        d = direct_run(model, clip, options, ours)
        direct.append(d)
        result = service_run(stack, client, redis, url, args.poll_interval, timeout_s,
                             redis_pid)
        service.append(result)
        print(f"run {index + 1}/{args.runs}: direct {d.seconds:.3f} s ({d.segments} segments, "
              f"{d.words} words), service {result.seconds:.3f} s", flush=True)
    print_results(direct, service)
    print()
    print(f"load average at end (1, 5, 15 min): {load_average()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unmeasured runs of each first (default 1, at least 1)")
    parser.add_argument("--poll-interval", type=float, default=0.02,
                        help="seconds between polls (default 0.02)")
    parser.add_argument("--client", choices=("requests", "http.client"), default="requests",
                        help="how the benchmark talks to the API (default requests)")
    parser.add_argument("--max-new-tokens", default="auto",
                        help="'auto' (default: unset unless a run takes > 60 s), 'unset', or N")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 1 or args.poll_interval <= 0:
        parser.error("--runs and --warmup must be >= 1, --poll-interval > 0")
    if args.max_new_tokens not in ("auto", "unset") and not args.max_new_tokens.isdigit():
        parser.error("--max-new-tokens must be auto, unset or a positive number")
    return run_with_cleanup(run, args)


if __name__ == "__main__":
    sys.exit(main())
