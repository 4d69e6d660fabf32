"""``voxhook worker``: an RQ worker that keeps its models warm.

RQ's default worker forks a child per job, which would load the models again for every job
and break a CUDA context created before the fork. This worker runs jobs in its own process
(RQ's SimpleWorker), loads every pipeline's model once before taking jobs, and runs a
heartbeat thread that keeps the running job alive in RQ's eyes however long the file, stamps
the running transcription in the database (its worker's sign of life, see
:mod:`app.transcriptions.recovery`), and announces the worker and its models' state to ``/readyz``.

It also runs the recovery passes (lost jobs, jobs missing from Redis), hands its job back
when it must stop before the job ends (:mod:`worker.stopping`), and outlives a Redis outage:
when RQ's loop gives up on a lost connection, it waits for Redis and takes jobs again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job

from app.config import Settings
from app.media.storage import storage_from_settings
from app.media.sweep import SweepSchedule, sweeps_here
from app.observability.logs import configure_logging
from app.observability.metrics import serve_worker_metrics
from app.store.db import Database
from app.transcriptions.pipelines import load_catalog
from app.transcriptions.queue import WORKER_KEY_PREFIX, JobQueue, WorkerAnnouncement
from app.transcriptions.recovery import RecoverySchedule, stamp_heartbeat
from worker.deadline import ExtendableDeathPenalty
from worker.jobs import WorkerContext, install_context
from worker.media.store import MediaStore
from worker.speech.model_cache import ModelCache
from worker.speech.remote_engine import engine_loader
from worker.stopping import StopGrace

log = logging.getLogger("voxhook.worker")


class TranscriptionWorker(SimpleWorker):
    """A SimpleWorker whose running job can be kept alive from another thread."""

    death_penalty_class = ExtendableDeathPenalty
    #: Redis away while idle: try again at most this many seconds apart (RQ's default, 60,
    #: would leave a restarted Redis's queue untouched for up to a minute).
    max_connection_wait_time = 5.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.running_job: Job | None = None
        #: Set by the first SIGTERM/SIGINT: the worker is to stop, not to reconnect.
        self.stop_requested = False
        #: Hands the running job back when the stop grace runs out (see worker.stopping).
        self.stop_grace: StopGrace | None = None

    def running_transcription_id(self) -> str | None:
        """The transcription of the job running now (its job's first argument)."""
        job = self.running_job
        if job is None:
            return None
        return str(job.args[0]) if job.args else job.id

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Warm shutdown: finish the running job, or hand it back when the grace ends."""
        self.stop_requested = True
        if self.stop_grace is not None:
            self.stop_grace.begin()
        super().request_stop(signum, frame)

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Cold shutdown (a second signal): hand the running job back first."""
        if self.stop_grace is not None and self.running_job is not None:
            self.stop_grace.hand_back_now()
        super().request_force_stop(signum, frame)

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
                 interval_s: int, stamp: Callable[[str], bool] | None = None) -> None:
        super().__init__(name="voxhook-heartbeat", daemon=True)
        self.worker, self.models, self.redis = worker, models, redis
        self.interval_s = interval_s
        #: Stamps the running transcription in the database (None: tests without one).
        self.stamp = stamp
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
        running = self.worker.running_transcription_id()
        if running is not None and self.stamp is not None:
            try:  # the database, not Redis, decides whether this worker is alive
                if not self.stamp(running):
                    log.info("transcription %s is no longer this worker's", running)
            except Exception as exc:
                log.warning("could not stamp transcription %s: %s", running, exc)
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
    database, storage = Database.from_settings(settings), storage_from_settings(settings)
    queue = JobQueue(settings)
    heartbeat = Heartbeat(worker, models, redis, settings.worker_heartbeat_s,
                          stamp=lambda running: stamp_heartbeat(database, running, name))
    heartbeat.start()  # announces "loading" while the models load
    if sweeps_here(settings):
        heartbeat.sweeps = SweepSchedule(settings, database, storage)
    worker.stop_grace = StopGrace(database, queue, name, worker.running_transcription_id,
                                  settings.recovery.worker_stop_grace_s)
    worker.stop_grace.install()
    recovery = RecoverySchedule(settings, database, queue)
    try:
        models.load_all()
        heartbeat.beat()
        install_context(WorkerContext(
            settings=settings, db=database, catalog=catalog, models=models, worker_name=name,
            media=MediaStore.from_settings(settings, storage)))
        log.info("worker %s ready: %s", name, models.status())
        if not burst:
            recovery.ensure_running()
        _work_through_outages(worker, redis, burst, settings.log_level)
    finally:
        recovery.stop()
        worker.stop_grace.cancel()
        heartbeat.stop()
    return 0


def _work_through_outages(worker: TranscriptionWorker, redis: Redis, burst: bool,
                          log_level: str) -> None:
    """RQ's loop, started again whenever it ends on a lost Redis connection rather than a
    stop request (RQ retries a lost connection while it waits for a job, but quits when
    Redis goes away around one)."""
    while True:
        try:
            worker.work(burst=burst, logging_level=log_level, with_scheduler=False)
        except RedisError as exc:
            log.warning("worker %s lost Redis: %s", worker.name, exc)
        except StopRequested:
            return
        if burst or worker.stop_requested:
            return
        log.warning("worker %s: RQ's loop ended without a stop request; waiting for Redis "
                    "to take jobs again", worker.name)
        try:
            _wait_for_redis(worker, redis)
        except StopRequested:
            return
        if worker.stop_requested:
            return


def _wait_for_redis(worker: TranscriptionWorker, redis: Redis) -> None:
    """Wait until Redis answers, then clear what this worker left there (its registration,
    which RQ refuses to make twice) so that the next ``work()`` can register afresh."""
    while not worker.stop_requested:
        try:
            redis.ping()
            with contextlib.suppress(Exception):
                worker.unsubscribe()
            redis.delete(worker.key)
            return
        except RedisError:
            time.sleep(1.0)
