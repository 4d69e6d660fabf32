"""The queue boundary: the only module of the API that touches Redis and RQ.

Jobs are enqueued by dotted path (``worker.jobs.run_transcription``), so the API never imports
the speech pipeline. Workers announce themselves under :data:`WORKER_KEY_PREFIX` with the
state of each pipeline's model; ``/readyz`` reads those announcements.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from app.config import Settings
from app.observability.context import request_id

log = logging.getLogger(__name__)

#: The RQ entry point of a transcription job (in the worker package).
TRANSCRIPTION_JOB = "worker.jobs.run_transcription"
#: A worker writes ``<prefix><worker name>`` = JSON :class:`WorkerAnnouncement`, with a TTL.
WORKER_KEY_PREFIX = "voxhook:worker:"
#: Called by RQ when a job fails for good, including when its worker died mid-job.
FAILURE_CALLBACK = "worker.jobs.on_job_failure"
#: A job whose worker died is tried once more before the transcription is failed.
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

    def enqueue_transcription(self, transcription_id: str) -> None:
        """Put a transcription on the queue; the job's id is the transcription's id.

        The job starts under the base timeout; the worker extends it once it knows the
        audio's length (see ``worker.deadline``).
        """
        self.queue.enqueue(
            TRANSCRIPTION_JOB,
            transcription_id,
            job_id=transcription_id,
            job_timeout=self.settings.job_timeouts.base_s,
            result_ttl=JOB_RECORD_TTL_S,
            failure_ttl=JOB_RECORD_TTL_S,
            description=f"transcription {transcription_id}",
            retry=Retry(max=ABANDONED_JOB_RETRIES),
            on_failure=Callback(FAILURE_CALLBACK),
            meta={"request_id": request_id.get()},  # carried into the job's log lines
        )
        log.info("transcription %s queued on %s", transcription_id, self.queue.name)

    def cancel(self, transcription_id: str) -> bool:
        """Take a transcription's job off the queue if no worker has started it; whether one
        was taken off.

        The job's record is deleted with it (the transcription's row says it was cancelled).
        A job a worker already holds is left to that worker: it stops by itself once it
        sees the row cancelled, and RQ's own bookkeeping of it stays consistent. Should a
        worker pop the job in the same instant, it finds either no job or a final row, and
        skips it.
        """
        try:
            job = Job.fetch(transcription_id, connection=self.redis)
        except NoSuchJobError:
            return False
        if job.get_status(refresh=False) not in _WAITING:
            return False
        job.delete(remove_from_queue=True)
        log.info("transcription %s: its queued job was removed", transcription_id)
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
