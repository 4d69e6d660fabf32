"""``voxhook worker``: an RQ worker that keeps its models warm.

RQ's default worker forks a child per job, which would load the models again for every job
and break a CUDA context created before the fork. This worker runs jobs in its own process
(RQ's SimpleWorker), loads every pipeline's model once before taking jobs, and runs a
heartbeat thread that keeps the running job alive in RQ's eyes however long the file, and
announces the worker and its models' state to ``/readyz``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from app.config import Settings
from app.media.storage import storage_from_settings
from app.media.sweep import SweepSchedule, sweeps_here
from app.observability.logs import configure_logging
from app.observability.metrics import serve_worker_metrics
from app.store.db import Database
from app.transcriptions.pipelines import load_catalog
from app.transcriptions.queue import WORKER_KEY_PREFIX, WorkerAnnouncement
from worker.deadline import ExtendableDeathPenalty
from worker.jobs import WorkerContext, install_context
from worker.media.store import MediaStore
from worker.speech.model_cache import ModelCache
from worker.speech.remote_engine import engine_loader

log = logging.getLogger("voxhook.worker")


class TranscriptionWorker(SimpleWorker):
    """A SimpleWorker whose running job can be kept alive from another thread."""

    death_penalty_class = ExtendableDeathPenalty

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.running_job: Job | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        self.running_job = job
        try:
            super().execute_job(job, queue)
        finally:
            self.running_job = None

    def beat_for_running_job(self) -> None:
        """Extend the worker's and the running job's heartbeats (called by the beat thread)."""
        job, execution = self.running_job, self.execution
        if job is not None and execution is not None:
            self.maintain_heartbeats(job, execution)


class Heartbeat(threading.Thread):
    """Every few seconds: announce the worker and its models, and keep the running job alive."""

    def __init__(self, worker: TranscriptionWorker, models: ModelCache, redis: Redis,
                 interval_s: int) -> None:
        super().__init__(name="voxhook-heartbeat", daemon=True)
        self.worker, self.models, self.redis = worker, models, redis
        self.interval_s = interval_s
        self.key = WORKER_KEY_PREFIX + worker.name
        self.stopped = threading.Event()
        #: Media sweeps, poked every beat (None: this worker leaves sweeping to the API).
        self.sweeps: SweepSchedule | None = None

    def run(self) -> None:
        while True:
            self.beat()
            if self.stopped.wait(self.interval_s):
                return

    def beat(self) -> None:
        announcement = WorkerAnnouncement(name=self.worker.name, host=socket.gethostname(),
                                          pid=os.getpid(), queue=self.worker.queue_names()[0],
                                          pipelines=self.models.status())
        try:
            self.redis.set(self.key, announcement.to_json(), ex=self.interval_s * 3)
            self.worker.beat_for_running_job()
        except Exception as exc:  # Redis briefly away: try again next beat
            log.warning("heartbeat failed: %s", exc)
        if self.sweeps is not None:
            self.sweeps.poke()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        with contextlib.suppress(Exception):
            self.redis.delete(self.key)


def run_worker(settings: Settings, burst: bool = False) -> int:
    """Load the models, then take jobs until stopped (or until the queue is empty: burst)."""
    configure_logging(settings.log_level, settings.log_format)
    serve_worker_metrics(settings.worker_metrics_port, "worker")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    catalog = load_catalog(settings)
    models = ModelCache(catalog, load=engine_loader(settings), hf_token=settings.hf_token)
    redis = Redis.from_url(settings.redis_url)
    name = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
    worker = TranscriptionWorker([settings.queue_name], connection=redis, name=name)
    heartbeat = Heartbeat(worker, models, redis, settings.worker_heartbeat_s)
    heartbeat.start()  # announces "loading" while the models load
    database, storage = Database.from_settings(settings), storage_from_settings(settings)
    if sweeps_here(settings):
        heartbeat.sweeps = SweepSchedule(settings, database, storage)
    try:
        models.load_all()
        heartbeat.beat()
        install_context(WorkerContext(
            settings=settings, db=database, catalog=catalog, models=models, worker_name=name,
            media=MediaStore.from_settings(settings, storage)))
        log.info("worker %s ready: %s", name, models.status())
        worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False)
    finally:
        heartbeat.stop()
    return 0
