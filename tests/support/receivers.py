"""Loopback webhook receivers that record exactly what arrived and answer from a script.

A :class:`Receiver` is a real HTTP server on 127.0.0.1. Every request is recorded as it came
off the wire (method, the raw request target with its query string untouched, headers, body
bytes), and each is answered by the next :class:`Reply` of the script; the last reply repeats
once the script is used up. Replies can be slow (to run into the sender's timeout), large (to
prove the sender reads only a bounded excerpt) or carry headers such as ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (the wait ends early when the receiver stops).
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    #: The request target exactly as sent: path and query, nothing decoded or re-encoded.
    target: str
    headers: dict[str, str]
    body: bytes
    #: time.monotonic() when the request had fully arrived.
    at: float


class Receiver:
    """A scripted HTTP receiver on loopback; use as a context manager."""

    def __init__(self, *script: Reply, host: str = "127.0.0.1") -> None:
        self.script = list(script) or [Reply()]
        self.requests: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server((host, 0), _Handler)
        self._server.receiver = self
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, target: str = "/hook") -> str:
        """The URL of ``target`` (a path, optionally with a query) on this receiver."""
        return f"http://{self.host}:{self.port}/{target.lstrip('/')}"

    def by_id(self) -> dict[str, list[Received]]:
        """The recorded requests grouped by their ``webhook-id``."""
        grouped: dict[str, list[Received]] = {}
        for request in self.requests:
            grouped.setdefault(request.headers.get("webhook-id", ""), []).append(request)
        return grouped

    def _next_reply(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.script[min(len(self.requests), len(self.script)) - 1]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: Receiver

    def verify_request(self, request: object, client_address: object) -> bool:
        with self.receiver._lock:
            self.receiver.connections += 1
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender that hangs up mid-answer (it read enough) is not an error here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:  # the name http.server looks for
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = receiver._next_reply(Received(self.command, self.path, headers, body,
                                              time.monotonic()))
        if reply.delay_s and receiver._stop.wait(reply.delay_s):
            return
        with contextlib.suppress(OSError):
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            view = memoryview(reply.body)
            for start in range(0, len(view), 65536):
                self.wfile.write(view[start:start + 65536])
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads :attr:`Receiver.requests` instead."""
