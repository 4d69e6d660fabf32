"""``voxhook serve``: the whole service on one machine, from one command.

Starts a private Redis (see :mod:`app.ops.embedded_redis`), applies the migrations to SQLite (or
the configured database), then runs the API under gunicorn, one worker and the webhook worker
as child processes, restarting a child that dies, until interrupted. Billing is not enforced
in this mode.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from app.config import Settings
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
        self.process = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()
        log.info("%s started (pid %s)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", self.name)
            self.process.kill()
            self.process.wait()


def serve(settings: Settings, host: str, port: int) -> int:
    """Run Redis, the API, a worker and the webhook worker until SIGINT/SIGTERM; returns the
    exit status."""
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis = EmbeddedRedis(settings.data_dir / "redis").start()
    try:
        settings = settings.with_overrides(redis_url=redis.url)
        upgrade(Database.from_settings(settings))
        env = {**os.environ, **settings.environment()}
        children = [
            Child("api", gunicorn_command(settings, host, port), env),
            Child("worker", [sys.executable, "-m", "app", "worker"], env),
            Child("webhooks", [sys.executable, "-m", "app", "webhook-worker"], env),
        ]
        for child in children:
            child.start()
        _announce(settings, host, port)
        return _supervise(children)
    finally:
        redis.stop()


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
                if time.monotonic() - child.started_at < RESTART_PAUSE_S:
                    time.sleep(RESTART_PAUSE_S)
                child.restarts += 1
                child.start()
        time.sleep(0.5)
    log.info("stopping: letting running work finish (up to %.0f s)", SHUTDOWN_GRACE_S)
    for child in children:
        child.stop()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    for child in children:
        child.wait_or_kill(deadline)
    return 0
