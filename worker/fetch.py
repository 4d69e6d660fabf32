"""Downloading media: streamed to disk, capped in size and time, safe against SSRF.

Each hop of a redirect chain is resolved and checked by :mod:`app.netguard`, and the
connection goes to the checked address (the ``Host`` header and TLS SNI carry the name), so a
DNS answer that changes between check and connect cannot redirect us inward.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

from app.config import FetchLimits
from app.netguard import AddressRefused, Allowlist, resolve_checked
from worker.errors import DownloadTimeout, DownloadTooLarge, FetchError, HttpStatusError, UrlRefused

log = logging.getLogger(__name__)

USER_AGENT = "Voxhook/0.1 (+self-hosted speech-to-text)"
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 256 * 1024


def download(url: str, destination: Path, limits: FetchLimits, allowlist: Allowlist) -> Path:
    """Fetch ``url`` into ``destination``, following checked redirects; returns the path."""
    deadline = time.monotonic() + limits.total_timeout_s
    current = url
    for _hop in range(limits.max_redirects + 1):
        response = _open(current, limits, allowlist)
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"The server answered {response.status} without a "
                                     "Location: the link is broken.")
                current = urljoin(current, location)
                continue
            if response.status == 404:
                raise HttpStatusError("The URL answered 404 Not Found: check the link, and "
                                      "that the file still exists and is public.", 404)
            if response.status >= 400:
                raise HttpStatusError(f"The URL answered HTTP {response.status}: make sure the "
                                      "file is publicly downloadable.", response.status)
            _stream_to(response, destination, limits, deadline)
            return destination
        finally:
            response.release_conn()
    raise FetchError(f"More than {limits.max_redirects} redirects: use the file's final, "
                     "direct URL.")


def _open(url: str, limits: FetchLimits, allowlist: Allowlist) -> urllib3.BaseHTTPResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"Only http and https URLs can be fetched, not '{url[:100]}'.")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = resolve_checked(host, port, allowlist)[0]
    except AddressRefused as exc:
        raise UrlRefused(f"The URL was refused: {exc}.") from exc
    timeout = urllib3.Timeout(connect=limits.connect_timeout_s, read=limits.read_timeout_s)
    if parts.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            str(address), port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False,
                                          maxsize=1)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    try:
        return pool.urlopen("GET", target, headers={"Host": host_header,
                                                    "User-Agent": USER_AGENT,
                                                    "Accept": "*/*"},
                            redirect=False, preload_content=False, decode_content=True)
    except urllib3.exceptions.NewConnectionError as exc:  # a subclass of the timeout error
        raise FetchError(f"Could not connect to {host}: {_reason(exc)}.") from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise DownloadTimeout(f"The server at {host} did not answer in time: try again later, "
                              "or host the file elsewhere.") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"Could not connect to {host}: {_reason(exc)}.") from exc


def _stream_to(response: urllib3.BaseHTTPResponse, destination: Path, limits: FetchLimits,
               deadline: float) -> None:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise DownloadTooLarge(_too_large(limits))
    written = 0
    try:
        with destination.open("wb") as sink:
            for chunk in response.stream(_CHUNK):
                written += len(chunk)
                if written > limits.max_bytes:
                    raise DownloadTooLarge(_too_large(limits))
                if time.monotonic() > deadline:
                    raise DownloadTimeout(
                        f"The download took longer than {limits.total_timeout_s:.0f} s: the "
                        "server is too slow; host the file elsewhere or upload it.")
                sink.write(chunk)
    except urllib3.exceptions.TimeoutError as exc:
        raise DownloadTimeout("The server stopped sending data: try again later.") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"The download broke off: {_reason(exc)}. Try again.") from exc
    log.info("downloaded %d bytes", written)


def _too_large(limits: FetchLimits) -> str:
    return (f"The file is larger than the limit of {limits.max_bytes // (1024 * 1024)} MB: "
            "send a shorter or more compressed file.")


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1][:200]
