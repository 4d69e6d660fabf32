"""Raw TCP listeners on loopback: count every connection, and misbehave on purpose.

A :class:`Listener` accepts connections on a loopback address (127.0.0.0/8 or ::1) and counts
them before anything is read, so a test can prove that a refused URL never reached it, not
even to open a TCP connection. Behaviours script what the "server" sends: nothing, a slow
trickle of body bytes or of header lines (a slow-loris), or a response cut short.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

#: What a listener does with a connection, given the request's first bytes.
Behaviour = Callable[[socket.socket, bytes, threading.Event], None]


def silent(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
    """Close at once: a trap that only counts."""


def trickle_body(interval_s: float = 0.2, declared: int = 100_000_000) -> Behaviour:
    """Headers declaring ``declared`` bytes at once, then one body byte every
    ``interval_s``: never silent for long enough to trip a read timeout, never done."""
    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\n"
                           b"Content-Length: %d\r\n\r\n" % declared)
        while not stop.wait(interval_s):
            connection.sendall(b"\0")
    return behave


def trickle_headers(interval_s: float = 0.2) -> Behaviour:
    """The status line, then one header line every ``interval_s``, forever."""
    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        count = 0
        while not stop.wait(interval_s):
            count += 1
            connection.sendall(b"X-Slow-%d: 1\r\n" % count)
    return behave


def cut_short(declared: int, sent: int) -> Behaviour:
    """Declare ``declared`` bytes, send ``sent`` of them, and close."""
    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/flac\r\n"
                           b"Content-Length: %d\r\n\r\n" % declared + b"\1" * sent)
    return behave


def respond(body: bytes, content_type: str = "application/octet-stream",
            status: str = "200 OK", headers: dict[str, str] | None = None) -> Behaviour:
    """One fixed HTTP response, then close."""
    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n")
        connection.sendall(head.encode() + body)
    return behave


def request_target(request: bytes) -> str:
    """The path and query of an HTTP request's first line."""
    parts = request.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) > 2 else "/"


def redirector(files: dict[str, bytes]) -> Behaviour:
    """``/goto?to=URL`` answers 302 to URL; a path in ``files`` answers its bytes."""
    def behave(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        target = urlsplit(request_target(request))
        if target.path == "/goto":
            location = parse_qs(target.query)["to"][0]
            connection.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        elif target.path in files:
            respond(files[target.path])(connection, request, stop)
        else:
            respond(b"not found", "text/plain", "404 Not Found")(connection, request, stop)
    return behave


class Listener:
    """Accept connections on ``host`` (a loopback address), count them, run ``behaviour``."""

    def __init__(self, host: str = "127.0.0.1", behaviour: Behaviour = silent,
                 port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)  # so the accept loop notices a stop
        self.port: int = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.connections = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = "/", host: str | None = None) -> str:
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{name}:{self.port}/{path.lstrip('/')}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            connection.settimeout(5)  # accepted sockets inherit the listener's timeout
            request = b""
            with contextlib.suppress(OSError):
                request = connection.recv(65536)
            self.behaviour(connection, request, self._stop)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
