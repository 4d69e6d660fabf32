"""Calls to the operator's remote services (a speech engine, a chat endpoint): POST, JSON
back, retried with back-off, under the same address rules as media downloads.

Every request goes through :class:`worker.media.fetch.Exchange`: the host is resolved and
every address checked by :class:`app.media.netguard.Resolver` (``VOXHOOK_FETCH_ALLOWLIST``
and ``VOXHOOK_FETCH_CONNECT_TO`` apply), the connection goes to the checked address, and a
watchdog ends the request at its deadline however slowly the server answers. A service the
operator marked ``allow_private_network`` has its own host added to the allowlist, and only
it: media URLs stay under the strict rules.

What is retried (:attr:`RemoteFailure.retryable`): the server down or unreachable, 408, 429
(waiting at least its ``Retry-After``), 5xx, a timeout, and an answer that is not the JSON
expected. Not retried: another 4xx (a wrong key, a model the server does not serve, a piece
too large: trying again changes nothing) and an address the guard refuses. Delays double
from ``backoff_s``. At most ``concurrency`` requests per service are in flight in one
process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.config import FetchLimits, Settings, secret_from_environment
from app.media.netguard import Allowlist, Resolver, parse_connect_to
from app.transcriptions.remote_config import RemoteService
from worker.errors import DownloadTimeout, FetchError, UrlRefused
from worker.media.fetch import Exchange, FetchPolicy
from worker.webhooks.delivery import parse_retry_after

log = logging.getLogger(__name__)

#: The largest answer read from a remote service (a transcript of hours is a few MB).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: A ``Retry-After`` is honoured up to this many seconds.
MAX_RETRY_AFTER_S = 60.0


@dataclass
class RemoteFailure(Exception):
    """One call failed; ``kind`` says how: refused, unavailable, rate_limited, timeout,
    rejected or malformed."""

    kind: str
    detail: str
    status: int | None = None
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return self.detail

    @property
    def retryable(self) -> bool:
        return self.kind in ("unavailable", "rate_limited", "timeout", "malformed")


_semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _semaphore(service: RemoteService) -> threading.BoundedSemaphore:
    """The process's limit of requests in flight to one service."""
    key = (service.base_url, service.concurrency)
    with _semaphores_lock:
        return _semaphores.setdefault(key, threading.BoundedSemaphore(service.concurrency))


def service_policy(service: RemoteService, settings: Settings) -> FetchPolicy:
    """The address rules and time bounds of calls to ``service``."""
    allowed = (*settings.fetch_allowlist,
               *((service.host,) if service.allow_private_network else ()))
    return FetchPolicy(
        limits=FetchLimits(max_bytes=MAX_ANSWER_BYTES,
                           connect_timeout_s=min(service.connect_timeout_s, service.timeout_s),
                           read_timeout_s=service.timeout_s, total_timeout_s=service.timeout_s,
                           max_redirects=0),
        resolver=Resolver(Allowlist.parse(allowed), parse_connect_to(settings.fetch_connect_to)),
        ca_bundle=settings.fetch_ca_bundle)


class RemoteCaller:
    """POSTs to one remote service, with its key, its limits and its retries."""

    def __init__(self, service: RemoteService, settings: Settings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.service = service
        self.policy = service_policy(service, settings)
        self.sleep = sleep

    def post(self, path: str, body: bytes, content_type: str,
             accept: Callable[[Any], Any] = lambda answer: answer) -> Any:
        """POST ``body`` to ``base_url + path``; the JSON answer as ``accept`` returns it.

        ``accept`` raises ValueError for an answer of the wrong shape (retried like a
        malformed answer). Raises :class:`RemoteFailure` once the retries are spent.
        """
        service = self.service
        for attempt in range(service.retries + 1):
            try:
                answer = self._once(path, body, content_type)
                try:
                    return accept(answer)
                except (ValueError, KeyError, TypeError) as exc:
                    raise RemoteFailure("malformed", f"its answer was not what OpenAI's API "
                                        f"returns ({exc})") from exc
            except RemoteFailure as failure:
                if not failure.retryable or attempt == service.retries:
                    raise
                delay = service.backoff_s * 2 ** attempt
                if failure.retry_after_s is not None:
                    delay = max(delay, min(failure.retry_after_s, MAX_RETRY_AFTER_S))
                log.warning("%s: %s (%s); try %d of %d in %.1f s", service.url(path),
                            failure.kind, failure.detail, attempt + 2, service.retries + 1,
                            delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, path: str, body: bytes, content_type: str) -> Any:
        service = self.service
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        key = secret_from_environment(service.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        deadline = time.monotonic() + service.timeout_s
        with _semaphore(service):
            try:
                with Exchange(service.url(path), self.policy, deadline, method="POST",
                              body=body, headers=headers) as response:
                    status = response.status
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    data = response.read(MAX_ANSWER_BYTES + 1, decode_content=True)
                    response.exchange.check_deadline()  # type: ignore[attr-defined]
            except UrlRefused as exc:
                raise RemoteFailure("refused", exc.message) from exc
            except DownloadTimeout as exc:
                raise RemoteFailure("timeout", f"no answer within {service.timeout_s:g} s"
                                    ) from exc
            except FetchError as exc:
                raise RemoteFailure("unavailable", exc.message) from exc
            except Exception as exc:  # a connection dropped mid-answer, and the like
                raise RemoteFailure("unavailable", f"the connection failed ({exc})") from exc
        if status == 429:
            raise RemoteFailure("rate_limited", "it answered 429 Too Many Requests", status,
                                retry_after)
        if status >= 500 or status == 408:
            raise RemoteFailure("unavailable", f"it answered HTTP {status}"
                                f"{_reason(data)}", status, retry_after)
        if status >= 300:
            raise RemoteFailure("rejected", f"it answered HTTP {status}{_reason(data)}", status)
        if len(data) > MAX_ANSWER_BYTES:
            raise RemoteFailure("malformed", "its answer was larger than "
                                f"{MAX_ANSWER_BYTES // (1024 * 1024)} MB")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RemoteFailure("malformed", f"its answer was not JSON ({data[:80]!r})"
                                ) from exc


def _reason(data: bytes) -> str:
    """The server's own words about an error (OpenAI's ``error.message``), briefly."""
    try:
        answer = json.loads(data)
        message = answer.get("error", {}).get("message") if isinstance(
            answer.get("error"), dict) else answer.get("error") or answer.get("detail")
    except (ValueError, AttributeError):
        message = data[:200].decode("utf-8", "replace").strip()
    return f": {str(message)[:200]}" if message else ""
