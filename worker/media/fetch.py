"""Downloading media: streamed to disk, capped in size and time, safe against SSRF.

Each hop of a redirect chain is resolved and checked by :class:`app.media.netguard.Resolver`, and
the connection goes to the checked address (the ``Host`` header and TLS SNI carry the name),
so a DNS answer that changes between check and connect cannot redirect us inward.

Sharing links (Google Drive, Dropbox, OneDrive, SharePoint) are first turned into direct
downloads (:mod:`worker.media.sharing`). What arrives is judged by its bytes, not its Content-Type:
a body that starts like an HTML document is a web page (a login wall, a private or deleted
file), unless it is Drive's "cannot scan this file for viruses" page, whose download button
is followed once.

Time is bounded three ways: connecting (connect timeout), silence (read timeout, per socket
read) and the whole download (total timeout). The total is enforced by a watchdog that shuts
the socket down when the deadline passes, because per-read timeouts alone never end a server
that dribbles a byte every few seconds (a slow-loris), in its headers or in its body.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from app.config import FetchLimits, Settings
from app.media.netguard import AddressRefused, Resolver
from worker.errors import (
    DownloadIncomplete,
    DownloadTimeout,
    DownloadTooLarge,
    FetchError,
    HttpStatusError,
    UrlRefused,
    WebPageNotMedia,
)
from worker.media.sharing import confirmation_url, direct_download_url, web_page_advice

log = logging.getLogger(__name__)

USER_AGENT = "Voxhook/0.1 (+self-hosted speech-to-text)"
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 256 * 1024
#: What a request line cannot carry as is (http.client would refuse or fail to encode it).
_NOT_ON_A_REQUEST_LINE = re.compile(r"[^\x21-\x7e]")
#: How much of a web page is read to look for Drive's download button.
_PAGE_BYTES = 1024 * 1024
#: The exchange each thread has open now (by ``threading`` ident), so that a stop can end a
#: read that waits on a silent or trickling peer (:func:`abort_exchange_of`).
_open_exchanges: dict[int, Exchange] = {}
#: Markup a media file never starts with (after whitespace and a byte-order mark).
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<meta",
                b"<title", b"<script")


@dataclass(frozen=True)
class FetchPolicy:
    """Where the fetcher may connect and how long and how much it may download."""

    limits: FetchLimits = field(default_factory=FetchLimits)
    resolver: Resolver = field(default_factory=Resolver)
    #: Certificate authorities for https; None: the public ones (certifi).
    ca_bundle: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(limits=settings.fetch_limits,
                   resolver=Resolver.from_settings(settings.fetch_allowlist,
                                                   settings.fetch_connect_to),
                   ca_bundle=settings.fetch_ca_bundle)


@dataclass(frozen=True)
class Downloaded:
    """A fetched file and where it finally came from."""

    path: Path
    #: The URL the bytes came from, after the sharing-link rewrite and redirects.
    final_url: str
    #: google_drive, dropbox, onedrive, sharepoint, or None for an ordinary link.
    provider: str | None
    size_bytes: int


def download(url: str, destination: Path, policy: FetchPolicy) -> Downloaded:
    """Fetch ``url`` into ``destination``, following checked redirects.

    Raises a :class:`worker.errors.FetchError` naming what went wrong and what to do.
    """
    limits = policy.limits
    link = direct_download_url(url)
    if link.url != url:
        log.info("sharing link (%s) turned into a direct download", link.provider)
    deadline = time.monotonic() + limits.total_timeout_s
    cookies = Cookies()
    current = link.url
    confirmed = False
    redirects = 0
    while True:
        with Exchange(current, policy, deadline, cookies) as response:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"The server answered {response.status} without a "
                                     "Location: the link is broken.")
                redirects += 1
                if redirects > limits.max_redirects:
                    raise FetchError(f"More than {limits.max_redirects} redirects: use the "
                                     "file's final, direct URL.")
                current = urljoin(current, location)
                continue
            if response.status >= 400:
                raise _status_error(response.status, link.provider)
            page = _save(response, destination, limits, deadline)
        if page is None:
            size = destination.stat().st_size
            log.info("downloaded %d bytes", size)
            return Downloaded(destination, current, link.provider, size)
        destination.unlink(missing_ok=True)
        follow = confirmation_url(page, current) if link.provider == "google_drive" else None
        if follow is None or confirmed:
            raise WebPageNotMedia(web_page_advice(link.provider))
        log.info("following Google Drive's download confirmation")
        current, confirmed = follow, True


def _request_target(path: str, query: str) -> str:
    """The path and query as sent on the request line: what a request line cannot carry
    (non-ASCII, spaces, control characters) percent-encoded as UTF-8, as browsers do; every
    other byte is sent exactly as given (webhook URLs may carry signatures)."""
    target = (path or "/") + (f"?{query}" if query else "")
    return _NOT_ON_A_REQUEST_LINE.sub(lambda found: quote(found.group(), safe=""), target)


def _status_error(status: int, provider: str | None) -> HttpStatusError:
    if provider is not None and status in (401, 403, 404, 410):
        return HttpStatusError(f"The sharing link answered HTTP {status}. "
                               + web_page_advice(provider), status)
    if status == 404:
        return HttpStatusError("The URL answered 404 Not Found: check the link, and that the "
                               "file still exists and is public.", 404)
    return HttpStatusError(f"The URL answered HTTP {status}: make sure the file is publicly "
                           "downloadable.", status)


class Cookies:
    """Cookies set along a redirect chain, sent back to the host that set them (Drive's
    older confirmation flow needs its ``download_warning`` cookie)."""

    def __init__(self) -> None:
        self._by_host: dict[str, dict[str, str]] = {}

    def header(self, host: str) -> str | None:
        jar = self._by_host.get(host)
        return "; ".join(f"{name}={value}" for name, value in jar.items()) if jar else None

    def remember(self, host: str, response: urllib3.BaseHTTPResponse) -> None:
        for raw in response.headers.getlist("Set-Cookie"):
            parsed = SimpleCookie()
            with contextlib.suppress(CookieError):
                parsed.load(raw)
            for name, morsel in parsed.items():
                self._by_host.setdefault(host, {})[name] = morsel.value


class Exchange:
    """One request on its own connection to a checked address, under the total deadline.

    A context manager that answers the response (body not yet read). Media downloads GET
    through it; webhook deliveries POST through it, so both get the same SSRF guard and the
    same watchdog. Failures raise :class:`worker.errors.FetchError` subclasses.
    """

    def __init__(self, url: str, policy: FetchPolicy, deadline: float,
                 cookies: Cookies | None = None, method: str = "GET",
                 body: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        try:  # the API checks URLs when they are given; a redirect's Location is not checked
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a port out of 1..65535)
        except ValueError as exc:
            raise UrlRefused(f"The URL '{url[:100]}' cannot be fetched: {exc}.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlRefused(f"Only http and https URLs can be fetched, not '{url[:100]}'.")
        self.parts, self.policy, self.deadline = parts, policy, deadline
        self.cookies = cookies or Cookies()
        self.method, self.body, self.extra_headers = method, body, headers or {}
        self.host = parts.hostname
        self.expired = threading.Event()
        self._watchdog: threading.Timer | None = None
        self._connection: HTTPConnection | None = None
        self._thread = threading.get_ident()
        #: The connected socket, kept here: once a response says it will close the
        #: connection, http.client hands the socket to the response and forgets it.
        self._socket: socket.socket | None = None

    def __enter__(self) -> urllib3.BaseHTTPResponse:
        parts, limits = self.parts, self.policy.limits
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            endpoint = self.policy.resolver.resolve(self.host, port)[0]
        except AddressRefused as exc:
            raise UrlRefused(f"The URL was refused: {exc}.") from exc
        connect_timeout = min(limits.connect_timeout_s, self._remaining())
        if parts.scheme == "https":
            ca_bundle = self.policy.ca_bundle
            self._connection = HTTPSConnection(
                str(endpoint.address), endpoint.port, timeout=connect_timeout,
                server_hostname=self.host, assert_hostname=self.host,
                cert_reqs="CERT_REQUIRED", ca_certs=str(ca_bundle or certifi.where()))
        else:
            self._connection = HTTPConnection(str(endpoint.address), endpoint.port,
                                              timeout=connect_timeout)
        headers = {"Host": _host_header(self.host, parts.port), "User-Agent": USER_AGENT,
                   "Accept": "*/*", **self.extra_headers}
        if cookie := self.cookies.header(self.host):
            headers["Cookie"] = cookie
        target = _request_target(parts.path, parts.query)
        try:
            self._connection.connect()
            self._socket = self._connection.sock
            _open_exchanges[self._thread] = self
            self._start_watchdog()
            # From now on the timeout bounds each read (urllib3 applies it to the socket).
            self._connection.timeout = limits.read_timeout_s
            self._connection.request(self.method, target, body=self.body, headers=headers,
                                     preload_content=False)
            response = self._connection.getresponse()
            self.check_deadline()  # a shut socket can look like the end of the headers
        except Exception as exc:
            self.close()
            raise self.translate(exc) from exc
        self.cookies.remember(self.host, response)
        response.exchange = self  # type: ignore[attr-defined]  # for _save's error mapping
        return response

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if _open_exchanges.get(self._thread) is self:
            del _open_exchanges[self._thread]
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()

    def abort(self) -> None:
        """End whatever read or write is waiting on the peer, from another thread."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def check_deadline(self) -> None:
        """Raise the total timeout if the watchdog fired (reads then end as if at EOF)."""
        if self.expired.is_set():
            raise _total_timeout(self.policy.limits)

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _total_timeout(self.policy.limits)
        return remaining

    def _start_watchdog(self) -> None:
        self._watchdog = threading.Timer(self._remaining(), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        """Past the deadline: end whatever read is waiting, however slowly bytes come."""
        self.expired.set()
        self.abort()

    def translate(self, exc: BaseException) -> FetchError:
        """The user-facing error for a failure of this exchange."""
        if isinstance(exc, FetchError):
            return exc
        host, limits = self.host, self.policy.limits
        if self.expired.is_set():
            return _total_timeout(limits)
        if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before TimeoutError:
            return FetchError(f"Could not connect to {host}: {_reason(exc)}.")  # a subclass
        if isinstance(exc, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)):
            return DownloadTimeout(f"The server at {host} stayed silent for more than "
                                   f"{limits.read_timeout_s:g} s: try again later, or host the "
                                   "file elsewhere.")
        if isinstance(exc, urllib3.exceptions.SSLError) or "CERTIFICATE" in str(exc):
            return FetchError(f"The TLS connection to {host} failed ({_reason(exc)}): the "
                              "server's certificate is not valid for its name.")
        return FetchError(f"Could not download from {host}: {_reason(exc)}. Try again.")


def abort_exchange_of(thread_ident: int) -> bool:
    """Shut the connection the thread ``thread_ident`` has open, if any; whether it had one.

    A job thread blocked in a socket read runs no Python code, so an exception raised into
    it (a stop's interruption) would wait for the read timeout; shutting the socket ends the
    read now, and the interruption lands."""
    exchange = _open_exchanges.get(thread_ident)
    if exchange is None:
        return False
    exchange.abort()
    return True


def _save(response: urllib3.BaseHTTPResponse, destination: Path, limits: FetchLimits,
          deadline: float) -> str | None:
    """Stream the body to ``destination``; returns the text of a web page instead of saving
    it when the body turns out to be HTML."""
    exchange: Exchange = response.exchange  # type: ignore[attr-defined]
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise DownloadTooLarge(_too_large(limits))
    written = 0
    try:
        chunks = response.stream(_CHUNK)
        first = next(chunks, b"")
        if _looks_like_html(first):
            page = first + b"".join(_take(chunks, _PAGE_BYTES - len(first)))
            return page.decode("utf-8", "replace")
        with destination.open("wb") as sink:
            for chunk in _prepend(first, chunks):
                written += len(chunk)
                if written > limits.max_bytes:
                    raise DownloadTooLarge(_too_large(limits))
                if time.monotonic() > deadline:
                    raise _total_timeout(limits)
                sink.write(chunk)
        exchange.check_deadline()
    except urllib3.exceptions.ProtocolError as exc:
        if exchange.expired.is_set():
            raise _total_timeout(limits) from exc
        if declared and declared.isdigit() and "IncompleteRead" in repr(exc):
            raise DownloadIncomplete(
                f"The server closed the connection after {written} of {declared} bytes: the "
                "download is incomplete. Try again, or upload the file.") from exc
        raise exchange.translate(exc) from exc
    except FetchError:
        raise
    except Exception as exc:
        raise exchange.translate(exc) from exc
    return None


def _looks_like_html(first: bytes) -> bool:
    head = first[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _take(chunks: Iterator[bytes], budget: int) -> Iterator[bytes]:
    for chunk in chunks:
        if budget <= 0:
            return
        yield chunk[:budget]
        budget -= len(chunk)


def _host_header(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _total_timeout(limits: FetchLimits) -> DownloadTimeout:
    return DownloadTimeout(f"The download took longer than {limits.total_timeout_s:g} s: the "
                           "server is too slow; host the file elsewhere or upload it.")


def _too_large(limits: FetchLimits) -> str:
    return (f"The file is larger than the limit of {describe_size(limits.max_bytes)}: send a "
            "shorter or more compressed file.")


def describe_size(size: int) -> str:
    """Bytes as a person reads them: 1024 MB, 300 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size / 1024:g} KB"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1][:200]
