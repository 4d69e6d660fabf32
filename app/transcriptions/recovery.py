"""Recovery: no transcription stays ``queued`` or ``processing`` without a worker that will
end it, whatever dies (a worker, Redis, an API process).

The database is the truth; Redis carries the jobs, and a job can vanish with it (a restart
without persistence), with its worker (kill -9, OOM, a machine gone) or between two steps
(an API process killed between its commit and its enqueue). Two passes find what is owed:

1. :func:`reap_lost_jobs`: a worker stamps its running transcription's ``heartbeat_at``
   every :attr:`~app.config.Recovery.heartbeat_s`. A ``processing`` row whose stamp is older
   than ``worker_lost_after_s`` lost its worker: :func:`hand_back` releases what the job
   held in the wallet and puts it back on the queue, once (``worker_losses``); a second loss
   fails it with ``worker_lost``. Liveness is the stamp, never the job's timeout, so a
   ten-hour job and a ten-second one are noticed as fast. The stamp lives in the database,
   not in Redis, so a Redis that comes back empty makes no live worker look dead.
2. :func:`requeue_orphans`: a ``queued`` row older than ``requeue_after_s`` whose job
   Redis does not hold (see :meth:`app.transcriptions.queue.JobQueue.live_jobs`) is enqueued again
   under
   a new job id.

Every process runs both every ``interval_s`` (:class:`RecoverySchedule`: each worker, each
API process), so any number may run them at once. Each change is a conditional UPDATE that
states what the pass saw (the stamp read, the job id read, the status), so exactly one
process wins it and only the winner enqueues: a transcription is enqueued once however many
passes race. Each retry gets a fresh RQ job id (``tr_…-<hex>``), so what a lost job left
in Redis never mixes with its successor, and a worker that was merely slow (a "zombie")
finds the row no longer its own (``worker_name`` is the fence) and stops without writing.

Money: a job handed back holds nothing while it waits (``wallet.release_for_retry``); the
retry reserves again and the completion charges once, in the same commit as the result.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from app.billing import wallet
from app.config import Settings
from app.store.db import Database
from app.store.models import Transcription, TranscriptionStatus, utcnow
from app.transcriptions.queue import ABANDONED_JOB_RETRIES, JobQueue
from app.webhooks.doorbell import ring_doorbell
from app.webhooks.events import record_transcription_event

log = logging.getLogger(__name__)

#: Rows looked at per pass and kind (the next pass takes the rest).
BATCH = 200
#: What a transcription says when its worker died twice (``worker.errors.WorkerLost``).
WORKER_LOST_CODE = "worker_lost"
WORKER_LOST_MESSAGE = ("The worker processing this file stopped before finishing (it crashed "
                       "or was restarted); send the request again.")

_T = Transcription
#: "Compare with whatever was read, NULL included" (the default: no such condition).
_UNSEEN: Any = object()


@dataclass
class RecoveryReport:
    """What one pass did: transcriptions handed back to the queue, failed for good, and
    enqueued again because their job was missing."""

    handed_back: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.handed_back) + len(self.failed) + len(self.requeued)


def next_job_id(transcription_id: str) -> str:
    """A new RQ job id for another attempt at ``transcription_id`` (the first job's id is
    the transcription's own)."""
    return f"{transcription_id}-{secrets.token_hex(4)}"


def stamp_heartbeat(db: Database, transcription_id: str, worker_name: str,
                    now: datetime | None = None) -> bool:
    """The worker's sign of life for its running job; False when the row is no longer
    this worker's (cancelled, deleted, or handed to another worker)."""
    with db.session() as session:
        stamped = session.execute(
            update(_T).where(_T.id == transcription_id,
                             _T.status == TranscriptionStatus.PROCESSING,
                             _T.worker_name == worker_name)
            .values(heartbeat_at=now or utcnow())
            .execution_options(synchronize_session=False))
        return stamped.rowcount == 1


def hand_back(db: Database, queue: JobQueue, transcription_id: str, worker_name: str | None,
              *, lost: bool, seen_heartbeat: datetime | None = _UNSEEN,
              now: datetime | None = None) -> str | None:
    """Take a ``processing`` transcription away from ``worker_name`` and put it back on the
    queue; returns ``"queued"``, ``"failed"`` (``lost`` and out of retries) or None when the
    row was not that worker's to take (final, cancelled, already handed back, or its stamp
    moved on since ``seen_heartbeat`` was read: the worker is alive after all).

    ``lost``: the worker died; counted in ``worker_losses`` (one retry, then
    ``worker_lost``). A worker that hands its own job back as it stops passes False: a
    deployment is not the job's fault. The wallet's hold is released in the same commit.
    """
    now = now or utcnow()
    owned = [_T.id == transcription_id, _T.status == TranscriptionStatus.PROCESSING,
             _T.worker_name.is_not_distinct_from(worker_name)]
    if seen_heartbeat is not _UNSEEN:
        owned.append(_T.heartbeat_at.is_not_distinct_from(seen_heartbeat))
    job_id = next_job_id(transcription_id)
    announced = []
    with db.session() as session:
        previous_job = session.scalar(select(_T.queue_job_id).where(_T.id == transcription_id))
        retry_left = [_T.worker_losses < ABANDONED_JOB_RETRIES] if lost else []
        requeued = session.execute(
            update(_T).where(*owned, *retry_left)
            .values(status=TranscriptionStatus.QUEUED, worker_name=None, heartbeat_at=None,
                    started_at=None, progress=0.0, queue_job_id=job_id, enqueued_at=now,
                    worker_losses=_T.worker_losses + (1 if lost else 0))
            .execution_options(synchronize_session=False))
        if requeued.rowcount == 1:
            wallet.release_for_retry(session, transcription_id, now)
            outcome = "queued"
        elif lost:
            failed = session.execute(
                update(_T).where(*owned)
                .values(status=TranscriptionStatus.FAILED, error_code=WORKER_LOST_CODE,
                        error_message=WORKER_LOST_MESSAGE, cost_micro_usd=None,
                        completed_at=now, heartbeat_at=None,
                        worker_losses=_T.worker_losses + 1)
                .execution_options(synchronize_session=False))
            if failed.rowcount != 1:
                return None
            wallet.release(session, transcription_id, now)
            row = session.get(_T, transcription_id, populate_existing=True)
            assert row is not None
            announced = record_transcription_event(session, row, now)
            outcome = "failed"
        else:
            return None
    if outcome == "failed":
        log.error("transcription %s failed: its worker %s was lost again", transcription_id,
                  worker_name)
        if announced:
            ring_doorbell(queue.redis, queue.settings)
        return outcome
    log.warning("transcription %s taken from worker %s (%s) and queued again",
                transcription_id, worker_name, "lost" if lost else "stopping")
    if lost:  # what the dead worker left in Redis must not trigger RQ's own clean-up
        _quietly(queue.forget_job, previous_job or transcription_id)
    _enqueue(queue, transcription_id, job_id)
    return outcome


def reap_lost_jobs(db: Database, queue: JobQueue, settings: Settings,
                   now: datetime | None = None) -> RecoveryReport:
    """Hand back (or fail) every ``processing`` transcription whose worker stopped stamping
    it ``worker_lost_after_s`` ago."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.recovery.worker_lost_after_s)
    with db.session() as session:
        stale = session.execute(
            select(_T.id, _T.worker_name, _T.heartbeat_at)
            .where(_T.status == TranscriptionStatus.PROCESSING,
                   or_(_T.heartbeat_at < cutoff,
                       (_T.heartbeat_at.is_(None)) & (_T.started_at < cutoff)))
            .order_by(_T.started_at).limit(BATCH)).all()
    report = RecoveryReport()
    for transcription_id, worker_name, heartbeat_at in stale:
        outcome = hand_back(db, queue, transcription_id, worker_name, lost=True,
                            seen_heartbeat=heartbeat_at, now=now)
        if outcome == "queued":
            report.handed_back.append(transcription_id)
        elif outcome == "failed":
            report.failed.append(transcription_id)
    return report


def requeue_orphans(db: Database, queue: JobQueue, settings: Settings,
                    now: datetime | None = None) -> RecoveryReport:
    """Enqueue again every ``queued`` transcription (queued for ``requeue_after_s`` at
    least) whose job Redis does not hold; each exactly once, however many processes run
    this at the same time. Redis unreachable: nothing is done (an error propagates), since
    a job that cannot be seen is not known to be missing."""
    now = now or utcnow()
    grace = settings.recovery.requeue_after_s
    cutoff = now - timedelta(seconds=grace)
    waiting_since = func.coalesce(_T.enqueued_at, _T.created_at)
    with db.session() as session:
        candidates = session.execute(
            select(_T.id, _T.queue_job_id)
            .where(_T.status == TranscriptionStatus.QUEUED, waiting_since < cutoff)
            .order_by(_T.created_at).limit(BATCH)).all()
    report = RecoveryReport()
    if not candidates:
        return report
    live = queue.live_jobs([job_id or tid for tid, job_id in candidates], now, grace)
    for transcription_id, seen_job_id in candidates:
        if (seen_job_id or transcription_id) in live:
            continue
        job_id = next_job_id(transcription_id)
        with db.session() as session:
            taken = session.execute(
                update(_T).where(_T.id == transcription_id,
                                 _T.status == TranscriptionStatus.QUEUED,
                                 _T.queue_job_id.is_not_distinct_from(seen_job_id),
                                 waiting_since < cutoff)
                .values(queue_job_id=job_id, enqueued_at=now)
                .execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            continue  # another process enqueued it, or a worker took it meanwhile
        log.warning("transcription %s was queued without a job in Redis; enqueued again",
                    transcription_id)
        _enqueue(queue, transcription_id, job_id)
        report.requeued.append(transcription_id)
    return report


def recover(db: Database, queue: JobQueue, settings: Settings,
            now: datetime | None = None) -> RecoveryReport:
    """One pass of both: lost workers first (what they hand back is enqueued at once)."""
    reaped = reap_lost_jobs(db, queue, settings, now)
    orphans = requeue_orphans(db, queue, settings, now)
    reaped.requeued = orphans.requeued
    if reaped.total:
        log.info("recovery: %d handed back, %d failed (worker lost twice), %d enqueued again",
                 len(reaped.handed_back), len(reaped.failed), len(reaped.requeued))
    return reaped


def _enqueue(queue: JobQueue, transcription_id: str, job_id: str) -> None:
    """Enqueue after the winning commit; should Redis be away, the row stays queued and a
    later pass enqueues it once ``requeue_after_s`` has passed."""
    try:
        queue.enqueue_transcription(transcription_id, job_id)
    except Exception as exc:
        log.warning("transcription %s could not be enqueued (%s); the next recovery pass "
                    "tries again", transcription_id, exc)


def _quietly(action: Any, *args: Any) -> None:
    try:
        action(*args)
    except Exception as exc:
        log.warning("recovery: %s failed (%s)", getattr(action, "__name__", action), exc)


class RecoverySchedule:
    """Runs :func:`recover` every ``interval_s`` in a daemon thread of this process.

    :meth:`ensure_running` starts the thread once per process, so gunicorn workers that fork
    after the app was built each start their own on their first request. A failed pass
    (database or Redis away) is logged and the next one tries again.
    """

    def __init__(self, settings: Settings, db: Database, queue: JobQueue) -> None:
        self.settings, self.db, self.queue = settings, db, queue
        self.interval_s = settings.recovery.interval_s
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stopped = threading.Event()

    def ensure_running(self) -> threading.Thread | None:
        """Start this process's recovery thread unless it runs already (or is off)."""
        if self.interval_s <= 0:
            return None
        with self._lock:
            if self._pid == os.getpid():
                return None
            self._pid = os.getpid()
        thread = threading.Thread(target=self._loop, name="voxhook-recovery", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        # Spread the passes of many processes a little, so they do not all query at once.
        if self._stopped.wait(self.interval_s * secrets.randbelow(1000) / 1000):
            return
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                recover(self.db, self.queue, self.settings)
            except Exception as exc:  # the database or Redis away: try again next time
                log.warning("recovery pass failed (%s); trying again in %.0f s", exc,
                            self.interval_s)
            self._stopped.wait(max(self.interval_s - (time.monotonic() - started), 0.1))
