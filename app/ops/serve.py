"""``voxhook serve``: the whole service on one machine, from one command.

Starts a private Redis (see :mod:`app.ops.embedded_redis`), applies the migrations to SQLite (or
the configured database), then runs the API under gunicorn, one worker and the webhook worker
as child processes, restarting a child that dies, until interrupted. Billing is not enforced
in this mode.

Each child runs in a process group of its own: Ctrl-C reaches this supervisor alone (not
gunicorn's workers behind its master's back), which asks every child to stop with SIGTERM,
gives them :data:`SHUTDOWN_GRACE_S`, then kills what is left of each group (a gunicorn
worker outliving its master included), and returns only once the API's port is free. The
worker is told to hand its running job back before that grace ends.

The worker runs at a lower CPU priority than the API and, with two cores or more, sized to
leave one core's share free (:func:`worker_share`), on which the API runs one process
(:func:`api_share`), so that the API answers quickly while a job runs
(``benchmarks/bench_api_beside_worker.py`` measures it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.config import Settings, usable_cores
from app.observability.logs import configure_logging
from app.ops.api_process import gunicorn_command
from app.ops.embedded_redis import EmbeddedRedis
from app.store.db import Database
from app.store.migrate import upgrade

log = logging.getLogger("voxhook.serve")

#: A child that dies sooner than this after its start is restarted after a pause.
RESTART_PAUSE_S = 3.0
#: How long children get to finish their work after Ctrl-C before they are killed.
SHUTDOWN_GRACE_S = 20.0
#: The worker hands a job it cannot finish back this long before it would be killed.
HAND_BACK_MARGIN_S = 5.0
#: How long to wait for the API's port to be free once its processes are gone.
PORT_RELEASE_S = 5.0


@dataclass
class Child:
    """A supervised child process and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = field(default=0)

    def start(self) -> None:
        """Start it in a new session, so its process group is its own (and the terminal's
        Ctrl-C is ours to pass on)."""
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        log.info("%s started (pid %s)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """Ask the leader to stop (gunicorn's master then stops its workers gracefully)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        """Wait for the leader until ``deadline``, then kill its whole group; whatever the
        leader left behind in its group is killed in any case."""
        if self.process is None:
            return
        try:
            self.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it and its processes", self.name)
        self.kill_group()
        self.process.wait()

    def kill_group(self) -> None:
        """SIGKILL every process of the child's group (its leader may be gone already)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


def serve(settings: Settings, host: str, port: int) -> int:
    """Run Redis, the API, a worker and the webhook worker until SIGINT/SIGTERM; returns the
    exit status."""
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis = EmbeddedRedis(settings.data_dir / "redis").start()
    try:
        worker = worker_share(settings, os.environ)
        settings = settings.with_overrides(
            redis_url=redis.url, api_workers=api_share(settings, os.environ, worker))
        upgrade(Database.from_settings(settings))
        env = {**os.environ, **settings.environment()}
        grace = min(settings.recovery.worker_stop_grace_s,
                    SHUTDOWN_GRACE_S - HAND_BACK_MARGIN_S)
        children = [
            Child("api", gunicorn_command(settings, host, port), env),
            Child("worker", [sys.executable, "-m", "app", "worker"],
                  {**env, "VOXHOOK_WORKER_STOP_GRACE_S": str(grace), **worker}),
            Child("webhooks", [sys.executable, "-m", "app", "webhook-worker"], env),
        ]
        try:
            for child in children:
                child.start()
            _announce(settings, host, port)
            return _supervise(children)
        finally:  # also when start-up itself was interrupted
            _stop_all(children)
            _wait_for_port_free(host, port)
    finally:
        redis.stop()


#: The transcription worker's niceness under ``serve``: the API, beside it, comes first.
WORKER_NICE = 10


def worker_share(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What the one-command run asks of its transcription worker, so that the API beside it
    stays fast while it transcribes: a lower CPU priority (``VOXHOOK_WORKER_NICE``) and, with
    two cores or more, one core's share left free (``VOXHOOK_WORKER_CORES`` = cores - 1, which
    sizes its concurrency and threads). What the operator set explicitly is kept."""
    nice = WORKER_NICE if settings.worker_nice is None else settings.worker_nice
    share = {"VOXHOOK_WORKER_NICE": str(nice)}
    if not settings.worker_cores and "VOXHOOK_WORKER_CORES" not in environ:
        cores = usable_cores()
        if cores >= 2:
            share["VOXHOOK_WORKER_CORES"] = str(cores - 1)
    return share


def api_share(settings: Settings, environ: Mapping[str, str],
              worker: Mapping[str, str]) -> int:
    """How many API processes the one-command run starts: one for each core the worker
    leaves free (so one, beside a worker sized by cores - 1), unless the operator set
    ``VOXHOOK_API_WORKERS``.

    One gevent process uses one core at most, and each keep-alive connection stays with
    the process that accepted it, so a second process on the same free core only splits the
    clients unevenly between two queues: measured at 8 clients beside a busy worker on two
    cores (benchmarks/bench_api_beside_worker.py), GET p99 28-34 ms with one process,
    44-78 ms with two.
    """
    if "VOXHOOK_API_WORKERS" in environ or "VOXHOOK_WORKER_CORES" not in worker:
        return settings.api_workers
    return max(1, usable_cores() - int(worker["VOXHOOK_WORKER_CORES"]))


def _announce(settings: Settings, host: str, port: int) -> None:
    url = settings.public_url or f"http://{host}:{port}"
    data = settings.data_dir.resolve()
    print(
        f"\nVoxhook is running at {url}  (docs: {url}/docs, readiness: {url}/readyz)\n"
        f"Data: {data}\n"
        f"Get an API key (in another terminal, from this folder):\n"
        f"    VOXHOOK_DATA_DIR={data} .venv/bin/voxhook keys create --name me\n"
        f"Then:  curl -H 'Authorization: Bearer <key>' -H 'Content-Type: application/json' "
        f"-d '{{\"url\": \"https://…/audio.mp3\"}}' {url}/transcribe\n"
        f"Billing is off in this mode: costs are shown, nothing is charged. Ctrl-C stops.\n",
        file=sys.stderr, flush=True,
    )


def _supervise(children: list[Child]) -> int:
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        for child in children:
            code = child.exited()
            if code is not None and not stopping:
                log.error("%s exited with status %s; restarting it", child.name, code)
                child.kill_group()  # a gunicorn worker may outlive its master
                if time.monotonic() - child.started_at < RESTART_PAUSE_S:
                    time.sleep(RESTART_PAUSE_S)
                child.restarts += 1
                child.start()
        time.sleep(0.5)
    return 0


def _stop_all(children: list[Child]) -> None:
    """SIGTERM every child, give them :data:`SHUTDOWN_GRACE_S` together, then kill what is
    left of each one's process group."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    log.info("stopping: letting running work finish (up to %.0f s)", SHUTDOWN_GRACE_S)
    for child in children:
        child.stop()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    for child in children:
        child.wait_or_kill(deadline)


def _wait_for_port_free(host: str, port: int) -> None:
    """Return once nothing accepts connections on the API's port (or after
    :data:`PORT_RELEASE_S`, saying so)."""
    deadline = time.monotonic() + PORT_RELEASE_S
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1",
                                 port)) != 0:
                return
        time.sleep(0.1)
    log.error("port %s is still answering after the stop; check `ss -ltnp`", port)
