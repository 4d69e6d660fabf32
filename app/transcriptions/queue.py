"""The queue boundary: the only module of the API that touches Redis and RQ.

Jobs are enqueued by dotted path (``worker.jobs.run_transcription``), so the API never imports
the speech pipeline. Workers announce themselves under :data:`WORKER_KEY_PREFIX` with the
state of each pipeline's model; ``/readyz`` reads those announcements.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import utcparse

from app.config import Settings
from app.observability.context import request_id

log = logging.getLogger(__name__)

#: The RQ entry point of a transcription job (in the worker package).
TRANSCRIPTION_JOB = "worker.jobs.run_transcription"
#: A worker writes ``<prefix><worker name>`` = JSON :class:`WorkerAnnouncement`, with a TTL.
WORKER_KEY_PREFIX = "voxhook:worker:"
#: Called by RQ when a job fails, including when RQ finds its worker died mid-job.
FAILURE_CALLBACK = "worker.jobs.on_job_failure"
#: A job whose worker died is tried once more before the transcription is failed. The
#: database counts the losses (``worker_losses``) and ``app.transcriptions.recovery`` retries: RQ's
#: own
#: retry is not used, since it would only notice a dead worker once the job's timeout ran
#: out, and would enqueue it a second time besides.
ABANDONED_JOB_RETRIES = 1
#: How long a transcription's RQ job record is kept after it ends (the row is the truth).
JOB_RECORD_TTL_S = 24 * 3600
#: RQ states of a job no worker holds yet (a cancellation takes it off the queue).
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


@dataclass(frozen=True)
class WorkerAnnouncement:
    """What a live worker says of itself: who it is and the state of each pipeline's model."""

    name: str
    host: str
    pid: int
    #: The queue it takes jobs from: only workers of this deployment's queue count.
    queue: str
    #: pipeline code -> {"state": "loading" | "ready" | "failed", "error": str | None,
    #: "loads": int (how many times this process loaded the model)}
    pipelines: dict[str, dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerAnnouncement:
        return cls(**json.loads(raw))


class JobQueue:
    """Enqueue transcriptions and read worker announcements."""

    def __init__(self, settings: Settings, connection: Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection or Redis.from_url(
            settings.redis_url, socket_connect_timeout=5, socket_timeout=10
        )
        self.queue = Queue(settings.queue_name, connection=self.redis)

    def enqueue_transcription(self, transcription_id: str, job_id: str | None = None) -> None:
        """Put a transcription on the queue under ``job_id`` (default: the transcription's
        id, its first job; ``app.transcriptions.recovery`` names the later ones).

        The job starts under the base timeout; the worker extends it once it knows the
        audio's length (see ``worker.deadline``). An id already in Redis raises RQ's
        ``DuplicateJobError``: a job is never enqueued twice.
        """
        self.queue.enqueue(
            TRANSCRIPTION_JOB,
            transcription_id,
            job_id=job_id or transcription_id,
            job_timeout=self.settings.job_timeouts.base_s,
            result_ttl=JOB_RECORD_TTL_S,
            failure_ttl=JOB_RECORD_TTL_S,
            description=f"transcription {transcription_id}",
            on_failure=Callback(FAILURE_CALLBACK),
            meta={"request_id": request_id.get()},  # carried into the job's log lines
            unique=True,
        )
        log.info("transcription %s queued on %s as job %s", transcription_id,
                 self.queue.name, job_id or transcription_id)

    def live_jobs(self, job_ids: Iterable[str], now: datetime, started_grace_s: float
                  ) -> set[str]:
        """Which of ``job_ids`` a worker will still run: waiting in the queue, just taken
        off it by a worker (RQ's intermediate list), scheduled, deferred, or started less
        than ``started_grace_s`` ago (a worker claims the row at once when it starts; a job
        started long ago whose row is still queued lost its worker in between).

        Everything is read in one MULTI, so a job moving from one list to the next between
        two reads cannot look absent.
        """
        job_ids = list(dict.fromkeys(job_ids))
        if not job_ids:
            return set()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self.queue.key, 0, -1)
            pipe.lrange(self.queue.intermediate_queue_key, 0, -1)
            for job_id in job_ids:
                pipe.hmget(Job.key_for(job_id), "status", "started_at")
            waiting, taken, *records = pipe.execute()
        listed = {_text(item) for item in [*waiting, *taken]}
        live = set()
        for job_id, (status, started_at) in zip(job_ids, records, strict=True):
            status = _text(status) if status is not None else None
            if job_id in listed or status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
                live.add(job_id)
            elif status == JobStatus.STARTED and started_at:
                started = utcparse(_text(started_at))
                if (now - started).total_seconds() < started_grace_s:
                    live.add(job_id)
        return live

    def forget_job(self, job_id: str) -> None:
        """Delete a lost job's record and its entries in RQ's registries, so that RQ's own
        clean-up of an abandoned job (which calls our failure callback) never acts on a
        transcription that was already handed to another job."""
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return
        job.delete(remove_from_queue=True)

    def cancel(self, job_id: str) -> bool:
        """Take a transcription's job (the row's ``queue_job_id``, or its id) off the queue
        if no worker has started it; whether one was taken off.

        The job's record is deleted with it (the transcription's row says it was cancelled).
        A job a worker already holds is left to that worker: it stops by itself once it
        sees the row cancelled, and RQ's own bookkeeping of it stays consistent. Should a
        worker pop the job in the same instant, it finds either no job or a final row, and
        skips it.
        """
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return False
        if job.get_status(refresh=False) not in _WAITING:
            return False
        job.delete(remove_from_queue=True)
        log.info("job %s: taken off the queue", job_id)
        return True

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def depth(self) -> int:
        """How many jobs wait on the queue for a worker (the operator's dashboard shows it)."""
        return int(self.queue.count)

    def live_workers(self) -> list[WorkerAnnouncement]:
        """Workers of this queue that announced themselves within their TTL."""
        workers = []
        for key in self.redis.scan_iter(match=f"{WORKER_KEY_PREFIX}*", count=100):
            raw = self.redis.get(key)
            if raw:
                announcement = WorkerAnnouncement.from_json(raw)
                if announcement.queue == self.queue.name:
                    workers.append(announcement)
        return workers


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
