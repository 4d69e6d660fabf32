"""One webhook attempt, and the policy that decides what follows it.

An attempt POSTs a delivery's exact body bytes, signed (:mod:`app.webhooks.signing`), through
:class:`worker.media.fetch.Exchange`, the media fetcher's request: the URL's host is resolved and
every address checked against server-side request forgery, the connection goes to the
checked address, and a watchdog ends the exchange at the deadline however the receiver
dribbles. Redirects are not followed (a receiver answering 3xx is told to configure its
final URL), and at most :data:`EXCERPT_BYTES` of the answer are read, so neither a slow nor a
talkative receiver can hold the worker. The URL is sent as given, query string byte for byte.

What follows (:func:`classify`, :func:`next_delay`):

- a 2xx is delivered;
- network errors, timeouts, 5xx, 408 and 429 are retried on the configured schedule (about
  a day), each delay spread by jitter; a ``Retry-After`` pushes the next attempt at least
  that far out (up to :data:`RETRY_AFTER_CAP_S`);
- any other answer (other 4xx, a redirect) and a URL the SSRF guard refuses stop at once:
  trying again would not change the answer.
"""

from __future__ import annotations

import enum
import logging
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

import urllib3

from app.config import FetchLimits, Settings
from app.media.netguard import AddressRefused, Resolver
from app.webhooks.signing import headers as signed_headers
from worker.errors import DownloadTimeout, FetchError, UrlRefused, summarize
from worker.media.fetch import Exchange, FetchPolicy

log = logging.getLogger(__name__)

#: The most of a receiver's answer that is read (and kept with the attempt).
EXCERPT_BYTES = 4096
#: A ``Retry-After`` longer than this is cut to it, so a receiver cannot park a delivery.
RETRY_AFTER_CAP_S = 24 * 3600.0
#: Statuses that mean "not now": retried like a network error.
RETRYABLE_STATUSES = frozenset({408, 429})


class Deliverable(Protocol):
    """What an attempt needs of a delivery (a :class:`app.store.models.WebhookDelivery` will do)."""

    @property
    def id(self) -> str: ...  # the webhook-id

    @property
    def url(self) -> str: ...

    @property
    def body(self) -> str: ...  # sent as its UTF-8 bytes


class Outcome(enum.StrEnum):
    """What an attempt means for its delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    STOP = "stop"


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt found out."""

    #: The receiver's HTTP status; None when no answer came (network error, timeout, refused).
    status_code: int | None
    #: From the start of the attempt until the answer's headers (or the failure).
    latency_ms: int
    #: Why the attempt did not deliver, for people; None for a 2xx.
    error: str | None
    #: The start of the answer's body (at most EXCERPT_BYTES, decoded leniently).
    excerpt: str | None = None
    #: Seconds the receiver asked us to wait (``Retry-After``), if it said.
    retry_after_s: float | None = None
    #: The SSRF guard refused the URL: nothing was sent, nothing was connected to.
    refused: bool = False


def webhook_policy(settings: Settings) -> FetchPolicy:
    """The fetch policy of deliveries: the media fetcher's address rules (allowlist,
    connect-to, CA bundle), with the webhook timeout bounding connect, silence and total."""
    timeout_s = settings.webhooks.timeout_s
    limits = FetchLimits(max_bytes=EXCERPT_BYTES,
                         connect_timeout_s=min(settings.fetch_limits.connect_timeout_s,
                                               timeout_s),
                         read_timeout_s=timeout_s, total_timeout_s=timeout_s, max_redirects=0)
    return FetchPolicy(limits=limits,
                       resolver=Resolver.from_settings(settings.fetch_allowlist,
                                                       settings.fetch_connect_to),
                       ca_bundle=settings.fetch_ca_bundle)


def attempt(delivery: Deliverable, secrets: list[str], policy: FetchPolicy, timeout_s: float,
            timestamp: int | None = None) -> AttemptResult:
    """POST ``delivery`` once, signed with ``secrets``, within ``timeout_s`` seconds.

    ``timestamp`` (Unix seconds) is the ``webhook-timestamp``; default now. Never raises for
    anything the receiver or the network does: the result says what happened.
    """
    body = delivery.body.encode("utf-8")
    when = int(time.time()) if timestamp is None else timestamp
    parts = urlsplit(delivery.url)
    try:
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and (
            parts.port or 1) > 0
    except ValueError:  # a port out of range or not a number
        usable = False
    if not usable:
        return AttemptResult(None, 0, "refused: a webhook URL must be http or https, with a "
                             "host and a valid port", refused=True)
    host = parts.hostname or ""
    started = time.monotonic()
    exchange = Exchange(delivery.url, policy, started + timeout_s, method="POST", body=body,
                        headers=signed_headers(delivery.id, when, body, secrets))
    try:
        with exchange as response:
            latency_ms = _elapsed_ms(started)
            status = response.status
            excerpt = _read_excerpt(response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            location = response.headers.get("Location")
    except UrlRefused as exc:
        if _unresolved(exc):  # DNS can come back: retried like a network error
            return AttemptResult(None, _elapsed_ms(started), exc.message)
        return AttemptResult(None, _elapsed_ms(started), f"refused: {exc.message}",
                             refused=True)
    except DownloadTimeout:
        return AttemptResult(None, _elapsed_ms(started),
                             f"timeout: {host} did not answer within {timeout_s:g} s")
    except FetchError as exc:
        return AttemptResult(None, _elapsed_ms(started), _network_error(exc, host))
    except Exception as exc:  # e.g. a host name no resolver can encode: retried, then failed
        log.warning("webhook %s: unexpected error sending to %s", delivery.id, host,
                    exc_info=True)
        return AttemptResult(None, _elapsed_ms(started),
                             f"The request to {host} failed: {summarize(exc)}")
    return AttemptResult(status, latency_ms, _status_error(status, location), excerpt,
                         retry_after)


def classify(result: AttemptResult) -> Outcome:
    """Delivered (2xx), worth another try (network, timeout, 5xx, 408, 429), or final."""
    status = result.status_code
    if result.refused:
        return Outcome.STOP
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status >= 500 or status in RETRYABLE_STATUSES:
        return Outcome.RETRY
    return Outcome.STOP


def next_delay(attempt_number: int, schedule: Sequence[float], jitter: float,
               retry_after_s: float | None = None,
               rng: random.Random | None = None) -> float | None:
    """Seconds until the attempt after attempt ``attempt_number`` (1 = the first), or None
    when the schedule is exhausted.

    The schedule's delay is spread by up to ``jitter`` (a share) either way, so deliveries
    that failed together do not all come back at the same instant; a ``Retry-After`` makes
    the delay at least that long (capped at :data:`RETRY_AFTER_CAP_S`).
    """
    if attempt_number < 1 or attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1]
    if jitter:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now`` (default: the current time): a number of
    seconds or an HTTP date; None when absent or unreadable (then the schedule decides)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:  # RFC 9110 dates are in GMT
        return None
    reference = now.timestamp() if now is not None else time.time()
    return max(moment.timestamp() - reference, 0.0)


def _read_excerpt(response: urllib3.BaseHTTPResponse) -> str | None:
    """The start of the body, never more than EXCERPT_BYTES; whatever arrived if reading
    fails (the status is what counts). Raw bytes: a compressed answer is not inflated."""
    data = b""
    try:
        while len(data) < EXCERPT_BYTES:
            chunk = response.read(EXCERPT_BYTES - len(data), decode_content=False)
            if not chunk:
                break
            data += chunk
    except Exception:  # a broken body does not change the answer's status
        pass
    if not data:
        return None
    # PostgreSQL text cannot hold NUL characters.
    return data[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")


def _status_error(status: int, location: str | None) -> str | None:
    if 200 <= status < 300:
        return None
    try:
        text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"
    if 300 <= status < 400:
        where = " to another address" if location else ""
        return (f"{text}: the receiver redirects{where}, and webhooks do not follow "
                "redirects; set the webhook URL to the final address")
    return text


def _network_error(exc: FetchError, host: str) -> str:
    """A network failure in delivery terms (the fetcher's messages speak of downloads)."""
    cause = exc.__cause__
    if exc.message.startswith(("Could not connect", "The TLS connection")) or cause is None:
        return exc.message
    reason = getattr(cause, "reason", None) or cause
    return f"The request to {host} failed: {str(reason).split(': ', 1)[-1][:200]}."


def _unresolved(exc: UrlRefused) -> bool:
    """Whether the guard refused only because the host did not resolve (for now)."""
    cause = exc.__cause__
    return isinstance(cause, AddressRefused) and (
        isinstance(cause.__cause__, socket.gaierror) or "resolved to no address" in str(cause))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
