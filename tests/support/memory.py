"""Measuring a process's memory from outside, and request bodies that are never whole in
memory (so the client's own memory stays flat while it sends hundreds of megabytes).

Linux only (/proc), like the rest of the process accounting in tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` now (``VmRSS`` of /proc/PID/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (a gunicorn master's workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


class RssPeak:
    """Samples a process's resident memory every ``interval_s`` while in the ``with`` block;
    ``before`` is the reading at the start, ``peak`` the highest seen."""

    def __init__(self, pid: int, interval_s: float = 0.002) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.before = self.peak = rss_bytes(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def rise(self) -> int:
        return self.peak - self.before

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self.samples += 1
            time.sleep(self.interval_s)

    def __enter__(self) -> RssPeak:
        self.before = self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


class PatternBody(io.RawIOBase):
    """``size`` bytes of a random 1 MB block repeated, made as they are read; ``len()`` gives
    requests its Content-Length, and ``sha256`` is the digest of what was read so far."""

    def __init__(self, size: int, block: bytes | None = None) -> None:
        self.size = size
        self.block = block or secrets.token_bytes(MB)
        self.position = 0
        self._digest = hashlib.sha256()

    def __len__(self) -> int:
        return self.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        offset = self.position % len(self.block)
        count = min(len(buffer), self.size - self.position, len(self.block) - offset)
        if count <= 0:
            return 0
        piece = memoryview(self.block)[offset:offset + count]
        buffer[:count] = piece
        self._digest.update(piece)
        self.position += count
        return count

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def chunks(self, size: int = MB) -> Iterator[bytes]:
        """The body as a generator, for chunked transfer encoding (no Content-Length)."""
        while piece := self.read(size):
            yield piece


class MultipartBody(io.RawIOBase):
    """A ``multipart/form-data`` body of text ``fields`` and one ``file`` part, streamed."""

    def __init__(self, fields: dict[str, str], file: PatternBody, filename: str,
                 content_type: str = "application/octet-stream") -> None:
        self.boundary = f"voxhook-{secrets.token_hex(12)}"
        head = "".join(f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"'
                       f"\r\n\r\n{value}\r\n" for name, value in fields.items())
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n')
        self.file = file
        self.parts: list[io.RawIOBase] = [io.BytesIO(head.encode()), file,
                                          io.BytesIO(f"\r\n--{self.boundary}--\r\n".encode())]
        self.size = len(head.encode()) + len(file) + len(self.boundary) + 8

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while self.parts:
            count = self.parts[0].readinto(buffer)
            if count:
                return count
            self.parts.pop(0)
        return 0
