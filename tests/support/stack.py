"""The whole service as real processes, for end-to-end tests and benchmarks.

``Stack`` runs ``voxhook api`` (gunicorn), ``voxhook worker`` and, when a test asks,
``voxhook webhook-worker`` as child processes against a given Redis and database, with a
pipelines file naming a locally built model, and talks to them over HTTP like any client.
Nothing in the service is patched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from app.ops.embedded_redis import free_port
from worker.stage_holds import hold_path

REPO = Path(__file__).resolve().parents[2]


def tiny_pipelines_toml(model_dir: Path, code: str = "tiny", max_new_tokens: int = 48,
                        extra: str = "", diarization: Path | None = None) -> str:
    """A pipelines file with one greedy, token-capped pipeline on ``model_dir``, diarizing
    with the pyannote pipeline folder ``diarization`` when given."""
    if diarization is not None:
        extra += f'''
[pipeline.diarization]
model = "{diarization}"
device = "cpu"
'''
    return f'''
default_pipeline = "{code}"
[[pipeline]]
code = "{code}"
description = "random test model"
model = "{model_dir}"
device = "cpu"
compute_type = "int8"
price_per_minute_usd = "0.0285"
aliases = ["qwen3-asr-flash-filetrans"]
[pipeline.decoding]
beam_size = 1
temperature = 0.0
vad_filter = true
max_new_tokens = {max_new_tokens}
{extra}
'''


@dataclass
class Stack:
    """API + worker processes sharing one data directory, database and Redis."""

    data_dir: Path
    database_url: str
    redis_url: str
    pipelines_path: Path
    allowlist: str = "127.0.0.1"
    api_workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    #: Each stack has its own queue, so stacks sharing a Redis never take each other's jobs.
    queue: str = field(default_factory=lambda: f"voxhook-test-{secrets.token_hex(4)}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VOXHOOK_DATA_DIR": str(self.data_dir),
            "VOXHOOK_DATABASE_URL": self.database_url,
            "VOXHOOK_REDIS_URL": self.redis_url,
            "VOXHOOK_PIPELINES": str(self.pipelines_path),
            "VOXHOOK_FETCH_ALLOWLIST": self.allowlist,
            "VOXHOOK_API_WORKERS": str(self.api_workers),
            "VOXHOOK_QUEUE": self.queue,
            "VOXHOOK_LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``voxhook ARGS`` against this stack's settings."""
        return subprocess.run([sys.executable, "-m", "app", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, check=check, timeout=120)

    def create_key(self, name: str = "tests") -> str:
        return self.cli("keys", "create", "--name", name).stdout.strip()

    def start_api(self) -> None:
        self._spawn("api", ["api", "--port", str(self.port)])
        self._wait(lambda: requests.get(f"{self.base_url}/healthz", timeout=1).ok, "API")

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self._spawn(name, ["worker"])

    def start_webhook_worker(self, name: str = "webhooks") -> subprocess.Popen[bytes]:
        """The webhook dispatcher (its log: ``log(name)``); it needs the schema, so start
        the API (which migrates) first."""
        return self._spawn(name, ["webhook-worker"])

    def wait_ready(self, timeout_s: float = 60) -> dict[str, Any]:
        """Wait until /readyz says ready (a worker has loaded every model)."""
        def ready() -> bool:
            return requests.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        self._wait(ready, "readiness", timeout_s)
        return requests.get(f"{self.base_url}/readyz", timeout=2).json()

    def stop(self) -> None:
        """Stop every child with its whole process group (gunicorn's workers included)."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _signal_group(process, signal.SIGKILL)  # anything the leader left behind
        self.processes.clear()

    @contextlib.contextmanager
    def hold(self, stage: str) -> Iterator[Path]:
        """Every job of this stack that reaches ``stage`` waits there until the block ends
        (worker.stage_holds): the test, not the machine's speed, decides where a job is.
        Left in place, a hold would block every later job of a shared stack, so the block
        always removes it."""
        path = hold_path(self.data_dir, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def wait_held(self, transcription_id: str, stage: str, worker: str = "worker",
                  timeout_s: float = 60) -> None:
        """Wait until ``worker``'s log says the transcription is held before ``stage``."""
        line = f"transcription {transcription_id} held before stage {stage}"
        self._wait(lambda: line in self.log(worker), line, timeout_s)

    def api_worker_pids(self) -> list[int]:
        """The gunicorn worker processes of the API (children of ``voxhook api``, which
        becomes the gunicorn master)."""
        from tests.support.memory import child_pids

        return child_pids(self.processes[0].pid)

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "app", *args], env=self.env,
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def _wait(self, probe: Any, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except requests.RequestException:
                pass
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a child exited while waiting for {what}:\n"
                                       + self.log("api")[-3000:] + self.log("worker")[-3000:])
            time.sleep(0.1)
        raise TimeoutError(f"{what} not reached in {timeout_s} s:\n" + self.log("api")[-3000:]
                           + self.log("worker")[-3000:])


@contextlib.contextmanager
def running_stack(folder: Path, redis_url: str, pipelines_path: Path, *, workers: int = 1,
                  ready_timeout_s: float = 120, **options: Any) -> Iterator[Stack]:
    """A stack on SQLite under ``folder``: its API and ``workers`` workers started (and, with
    workers, ready), all stopped on exit. ``options`` are Stack's other fields."""
    instance = Stack(data_dir=folder / "data", database_url=f"sqlite:///{folder}/db.sqlite",
                     redis_url=redis_url, pipelines_path=pipelines_path, **options)
    try:
        instance.start_api()
        for number in range(workers):
            instance.start_worker(f"worker-{number}" if number else "worker")
        if workers:
            instance.wait_ready(timeout_s=ready_timeout_s)
        yield instance
    finally:
        instance.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class Client:
    """A thin HTTP client for one key (what a user's script does)."""

    def __init__(self, base_url: str, key: str, bearer: bool = True) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}" if bearer else key

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def wait_final(self, path: str, timeout_s: float = 120, interval_s: float = 0.05
                   ) -> dict[str, Any]:
        """Poll ``path`` until the transcription is final (completed, failed, cancelled)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.get(path).json()
            if body["status"] in ("completed", "failed", "cancelled"):
                return body
            time.sleep(interval_s)
        raise TimeoutError(f"{path} did not finish in {timeout_s} s")
