"""``voxhook webhook-worker``: sends webhook deliveries, apart from the transcription workers.

A receiver may take up to the webhook timeout to answer, or never; that must not hold a GPU
worker and its model. So deliveries are rows in the database (an outbox written in the same
commit as the transcription's end) and this light process, which loads no model and imports
no torch, faster-whisper or pyannote, sends them on a small thread pool: a slow receiver holds
one thread for the timeout at most.

How a delivery is taken: a conditional UPDATE sets its lease (``leased_until``) only where
the delivery is pending, due and not leased, so of several dispatchers exactly one sends it;
a dispatcher that dies lets go when the lease runs out. The attempt runs outside any
database transaction; its record and the delivery's new state are then written together,
and only while the lease is still ours.

When to look: every :data:`POLL_INTERVAL_S`, and at once when a producer rings the doorbell
(:mod:`app.webhooks.doorbell`). SIGTERM stops taking deliveries and lets the running attempts
finish (each ends within the timeout).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.observability.logs import configure_logging
from app.observability.metrics import WEBHOOK_ATTEMPTS, serve_worker_metrics
from app.store.db import Database
from app.store.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from app.webhooks.doorbell import doorbell_key
from app.webhooks.secrets import signing_secrets
from worker.media.fetch import FetchPolicy
from worker.webhooks.delivery import (
    AttemptResult,
    Outcome,
    attempt,
    classify,
    next_delay,
    webhook_policy,
)

log = logging.getLogger("voxhook.webhooks")

#: Deliveries sent at once by one dispatcher (each thread waits on one receiver).
DEFAULT_THREADS = 8
#: How often the database is looked at when the doorbell stays silent.
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds the lease of, with what sending it needs."""

    id: str
    account_id: str
    endpoint_id: str | None
    url: str
    body: str
    #: Attempts made before this one.
    attempts: int
    #: Our lease's end, as written: the record is kept only while it is still there.
    lease: datetime


class Dispatcher:
    """Claims due deliveries and sends them; one per process, any number per deployment.

    ``clock`` gives the current time (tests hand in a fake one, or pass ``now`` to
    :meth:`run_once`); ``rng`` spreads the retry delays.
    """

    def __init__(self, settings: Settings, database: Database, *, redis: Redis | None = None,
                 policy: FetchPolicy | None = None, threads: int = DEFAULT_THREADS,
                 clock: Callable[[], datetime] = utcnow, rng: random.Random | None = None,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.settings, self.database, self.redis = settings, database, redis
        self.webhooks = settings.webhooks
        self.policy = policy or webhook_policy(settings)
        self.threads, self.clock = threads, clock
        self.rng = rng or random.Random()
        self.poll_interval_s = poll_interval_s
        self.lease_s = self.webhooks.timeout_s + self.webhooks.lease_margin_s
        self.doorbell = doorbell_key(settings)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="voxhook-webhook")
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ driving

    def run_once(self, now: datetime | None = None) -> int:
        """Send everything due at ``now`` (default: the clock), waiting for every attempt;
        returns how many attempts were made. ``now`` also stamps the attempts, their
        signatures and the next attempt's time, so a test can step a fake clock past the
        back-off instead of sleeping through it. Bugs propagate."""
        total = 0
        while True:
            claimed = self.claim(now or self.clock(), self.threads)
            if not claimed:
                return total
            for future in [self._pool.submit(self.deliver, item, now) for item in claimed]:
                future.result()
            total += len(claimed)

    def run_forever(self) -> None:
        """Keep the thread pool busy with due deliveries until :meth:`stop`; then let the
        running attempts finish."""
        in_flight: set[Future[None]] = set()
        try:
            while not self._stopping.is_set():
                in_flight = {future for future in in_flight if not future.done()}
                free = self.threads - len(in_flight)
                claimed: list[Claimed] = []
                if free:
                    try:
                        claimed = self.claim(self.clock(), free)
                    except Exception:  # the database may come back
                        log.exception("could not look for due webhook deliveries")
                        self._stopping.wait(self.poll_interval_s)
                        continue
                in_flight |= {self._pool.submit(self._deliver_logged, item)
                              for item in claimed}
                if free and len(claimed) < free:
                    self._wait_for_doorbell()  # nothing more is due now
                else:  # every thread busy: more may be due once one is free
                    wait(in_flight, timeout=self.poll_interval_s, return_when=FIRST_COMPLETED)
        finally:
            self._pool.shutdown(wait=True)
            log.info("webhook worker stopped")

    def stop(self) -> None:
        """Stop taking deliveries (safe from a signal handler)."""
        self._stopping.set()

    def close(self) -> None:
        """Release the thread pool (after :meth:`run_once` use)."""
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ steps

    def claim(self, now: datetime, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (oldest due first) for this dispatcher."""
        lease = now + timedelta(seconds=self.lease_s)
        with self.database.session() as session:
            candidates = session.scalars(
                select(WebhookDelivery.id).where(*_due(now))
                .order_by(WebhookDelivery.next_attempt_at).limit(limit * 2)).all()
        claimed: list[Claimed] = []
        for delivery_id in candidates:
            if len(claimed) == limit:
                break
            with self.database.session() as session:
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, *_due(now))
                    .values(leased_until=lease)
                    .execution_options(synchronize_session=False))
                if taken.rowcount != 1:
                    continue  # another dispatcher took it first
                row = session.execute(
                    select(WebhookDelivery.account_id, WebhookDelivery.endpoint_id,
                           WebhookDelivery.url, WebhookDelivery.body,
                           WebhookDelivery.attempts)
                    .where(WebhookDelivery.id == delivery_id)).one()
            claimed.append(Claimed(delivery_id, row.account_id, row.endpoint_id, row.url,
                                   row.body, row.attempts, lease))
        return claimed

    def deliver(self, item: Claimed, now: datetime | None = None) -> None:
        """Make one attempt at a claimed delivery and record it."""
        started = now or self.clock()
        with self.database.session() as session:
            if item.endpoint_id and _endpoint_deleted(session, item.endpoint_id):
                self._abandon(session, item, "the webhook endpoint was deleted")
                return
            secrets = signing_secrets(session, item.account_id, started)
        result = attempt(item, secrets, self.policy, self.webhooks.timeout_s,
                         int(started.timestamp()))
        self.record(item, result, started, now or self.clock())

    def record(self, item: Claimed, result: AttemptResult, attempted_at: datetime,
               finished_at: datetime) -> None:
        """Write the attempt and the delivery's next state in one transaction."""
        outcome = classify(result)
        number = item.attempts + 1
        delay = None
        if outcome is Outcome.RETRY:
            delay = next_delay(number, self.webhooks.retry_schedule_s, self.webhooks.jitter,
                               result.retry_after_s, self.rng)
        next_at = finished_at + timedelta(seconds=delay) if delay is not None else None
        if outcome is Outcome.DELIVERED:
            status, error = DeliveryStatus.DELIVERED, None
        elif next_at is not None:
            status, error = DeliveryStatus.PENDING, result.error
        elif outcome is Outcome.RETRY:
            status = DeliveryStatus.FAILED
            error = f"gave up after {number} attempts: {result.error}"
        else:
            status, error = DeliveryStatus.FAILED, f"not retried: {result.error}"
        with self.database.session() as session:
            session.add(WebhookAttempt(
                delivery_id=item.id, attempted_at=attempted_at, status_code=result.status_code,
                latency_ms=result.latency_ms, error=result.error,
                response_excerpt=result.excerpt, next_attempt_at=next_at))
            kept = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == item.id, WebhookDelivery.leased_until == item.lease)
                .values(attempts=number, status=status, next_attempt_at=next_at,
                        leased_until=None, last_status_code=result.status_code,
                        last_error=error,
                        delivered_at=attempted_at if status == DeliveryStatus.DELIVERED
                        else None)
                .execution_options(synchronize_session=False))
            if kept.rowcount != 1:
                log.warning("delivery %s: lease lost during attempt %d; its state is left to "
                            "the dispatcher that holds it now", item.id, number)
        WEBHOOK_ATTEMPTS.labels("delivered" if status == DeliveryStatus.DELIVERED else
                                "retrying" if status == DeliveryStatus.PENDING else
                                "failed").inc()
        log.info("delivery %s attempt %d to %s: %s%s", item.id, number, _host(item.url),
                 status, f" ({result.status_code or result.error})"
                 if status != DeliveryStatus.DELIVERED else "")

    # ------------------------------------------------------------------ helpers

    def _abandon(self, session: Session, item: Claimed, reason: str) -> None:
        session.execute(update(WebhookDelivery)
                        .where(WebhookDelivery.id == item.id,
                               WebhookDelivery.leased_until == item.lease)
                        .values(status=DeliveryStatus.FAILED, next_attempt_at=None,
                                leased_until=None, last_error=f"not sent: {reason}")
                        .execution_options(synchronize_session=False))
        log.info("delivery %s not sent: %s", item.id, reason)

    def _deliver_logged(self, item: Claimed) -> None:
        try:
            self.deliver(item)
        except Exception:  # a bug: the lease runs out and it is tried again
            log.exception("delivery %s: unexpected error", item.id)

    def _wait_for_doorbell(self) -> None:
        if self.redis is None:
            self._stopping.wait(self.poll_interval_s)
            return
        try:
            if self.redis.blpop([self.doorbell], timeout=self.poll_interval_s):
                self.redis.delete(self.doorbell)  # one wake-up is enough for every ring
        except RedisError as exc:
            if not self._stopping.is_set():  # Redis stopping with us is no news
                log.warning("webhook doorbell unavailable (%s); polling the database", exc)
                self._stopping.wait(self.poll_interval_s)


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Conditions of a delivery that may be taken now."""
    return (WebhookDelivery.status == DeliveryStatus.PENDING,
            or_(WebhookDelivery.next_attempt_at.is_(None),
                WebhookDelivery.next_attempt_at <= now),
            or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))


def _endpoint_deleted(session: Session, endpoint_id: str) -> bool:
    deleted_at = session.scalar(select(WebhookEndpoint.deleted_at)
                                .where(WebhookEndpoint.id == endpoint_id))
    return deleted_at is not None


def _host(url: str) -> str:
    """Only the host of a URL goes to the log: its path or query may carry a token."""
    return urlsplit(url).hostname or "?"


def run_dispatcher(settings: Settings) -> int:
    """The ``voxhook webhook-worker`` process: send deliveries until SIGTERM or SIGINT."""
    configure_logging(settings.log_level, settings.log_format)
    serve_worker_metrics(settings.webhook_metrics_port, "webhook worker")
    database = Database.from_settings(settings)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
    dispatcher = Dispatcher(settings, database, redis=redis)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: dispatcher.stop())
    log.info("webhook worker ready: %d threads, timeout %g s, %d retries",
             dispatcher.threads, settings.webhooks.timeout_s,
             len(settings.webhooks.retry_schedule_s))
    dispatcher.run_forever()
    database.dispose()
    return 0

