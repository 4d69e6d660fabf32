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

**Several jobs at once** (``VOXHOOK_WORKER_CONCURRENCY`` > 1, the default on a machine with
several cores): the process runs that many *lanes*, each an RQ SimpleWorker in a thread of its
own, all on the models loaded once (CTranslate2 serves that many calls at once on one model;
a diarizer takes one job at a time). Everything that is per job today stays per job, because
each lane is a worker of its own to the rest of the system: its own name (``<process
name>-<n>``), which its jobs' rows carry in ``worker_name`` (the fence) and which the
heartbeat stamps on each running row; its own deadline, kept by a watchdog timer that raises
in the lane's thread (:class:`worker.deadline.WatchdogDeathPenalty`: SIGALRM reaches the main
thread only); its own stop grace, which hands its job back and interrupts that thread alone.
The main thread receives the signals and passes them on to every lane. With one job at a time
nothing changes: the job runs in the main thread under SIGALRM, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job

from app.config import Settings, usable_cores
from app.media.storage import storage_from_settings
from app.media.sweep import SweepSchedule, sweeps_here
from app.observability.logs import configure_logging
from app.observability.metrics import serve_worker_metrics
from app.store.db import Database
from app.transcriptions.pipelines import load_catalog
from app.transcriptions.queue import WORKER_KEY_PREFIX, JobQueue, WorkerAnnouncement
from app.transcriptions.recovery import RecoverySchedule, stamp_heartbeat
from worker.deadline import ExtendableDeathPenalty, WatchdogDeathPenalty
from worker.jobs import WorkerContext, install_context
from worker.media.store import MediaStore
from worker.speech.asr import resolve_device
from worker.speech.model_cache import ModelCache
from worker.speech.remote_engine import engine_loader
from worker.stopping import StopGrace, interrupt_thread

log = logging.getLogger("voxhook.worker")


#: How often the worker's pub/sub listener (RQ's commands to a worker) wakes, bounding how
#: long closing it waits when the worker stops.
PUBSUB_WAKE_S = 1.0


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

    def subscribe(self) -> None:
        """RQ's own, but its listener thread wakes every second instead of every minute.

        On stopping, RQ's ``unsubscribe`` closes the pub/sub connection that this thread
        reads with a blocking timeout of ``sleep_time``; the close waits for that read, so
        with RQ's 60 s a stopping worker hung for up to a minute after its last job (seen
        as a worker outliving its stop grace).
        """
        self.log.info("Worker %s: subscribing to channel %s", self.name,
                      self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAKE_S, daemon=True,
            exception_handler=self._pubsub_exception_handler)

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


class LaneWorker(TranscriptionWorker):
    """One of several job threads of a worker process (see the module's docstring).

    It keeps its job's deadline with a watchdog thread instead of SIGALRM, installs no
    signal handlers (the main thread has them, and calls :meth:`stop_softly`), and while idle
    wakes every :attr:`idle_check_s` seconds to notice a stop.
    """

    death_penalty_class = WatchdogDeathPenalty
    idle_check_s = 2

    def _install_signal_handlers(self) -> None:
        """Signals reach the main thread only, which passes them on."""

    def stop_softly(self) -> None:
        """Warm stop: take no new job, and give the running one the stop grace."""
        self.stop_requested = True
        self._stop_requested = True
        if self.stop_grace is not None:
            self.stop_grace.begin()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None
                                     ) -> tuple[Job, Queue] | None:
        """RQ's blocking wait for a job, cut into short waits so that a stop is noticed
        (None then, which ends RQ's loop)."""
        if timeout is None:  # burst: RQ does not block
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        wait_s = min(timeout, self.idle_check_s)
        while not self._stop_requested:
            found = super().dequeue_job_and_maintain_ttl(wait_s, max_idle_time=wait_s)
            if found is not None and self._stop_requested:
                self._return_to_queue(*found)
                return None
            if found is not None:
                return found
        return None

    def _return_to_queue(self, job: Job, queue: Queue) -> None:
        """A job that arrived while this worker was stopping goes back to the front of the
        queue, for another worker. The usual one is a sibling lane's own job, handed back
        as the grace ran out: taken here it would be cut off when the process exits (it was
        seen failing mid-download), or handed back once more."""
        with self.connection.pipeline() as pipe:  # MULTI: moved back, or not at all
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)  # where RQ's LMOVE put it
            queue.push_job_id(job.id, pipeline=pipe, at_front=True)
            pipe.execute()
        log.info("worker %s is stopping: job %s goes back to the queue untouched", self.name,
                 job.id)


def default_concurrency(settings: Settings, device: str, cores: int) -> int:
    """Jobs at once when ``VOXHOOK_WORKER_CONCURRENCY`` is not set: one per core on a CPU
    (each with a share of the cores, so the cores stay busy through each job's single-threaded
    stretches: decoding, VAD, assembly); on a GPU, :data:`GPU_DEFAULT_CONCURRENCY`."""
    if settings.worker_concurrency:
        return settings.worker_concurrency
    return GPU_DEFAULT_CONCURRENCY if device == "cuda" else max(1, cores)


#: Concurrent jobs per GPU worker by default: short files leave a GPU mostly idle between
#: one job's windows; four fill it without crowding its memory (one model's weights, four
#: sets of activations). Not measured here (no GPU): ``benchmarks/bench_gpu.py`` measures it.
GPU_DEFAULT_CONCURRENCY = 4


def cpu_cores(settings: Settings) -> int:
    """The cores this worker sizes its defaults by: ``VOXHOOK_WORKER_CORES``, or all the
    process may run on."""
    return settings.worker_cores or usable_cores()


def threads_per_job(settings: Settings, concurrency: int, cores: int) -> int:
    """CPU threads each concurrent job's speech recognition gets: the cores shared out."""
    return settings.worker_cpu_threads or max(1, cores // concurrency)


class Heartbeat(threading.Thread):
    """Every few seconds: announce the worker and its models, and keep the running jobs alive
    (each lane's, when the worker runs several at once)."""

    def __init__(self, worker: TranscriptionWorker, models: ModelCache, redis: Redis,
                 interval_s: int, stamp: Callable[[str, str], bool] | None = None, *,
                 lanes: Sequence[TranscriptionWorker] = (), name: str | None = None) -> None:
        super().__init__(name="voxhook-heartbeat", daemon=True)
        self.worker, self.models, self.redis = worker, models, redis
        #: The RQ workers whose running jobs this beat keeps alive (default: ``worker``).
        self.lanes = list(lanes) or [worker]
        self.name = name or worker.name
        self.interval_s = interval_s
        #: Stamps a running transcription for the worker (lane) that runs it, in the
        #: database (None: tests without one).
        self.stamp = stamp
        self.key = WORKER_KEY_PREFIX + self.name
        self.stopped = threading.Event()
        #: Media sweeps, poked every beat (None: this worker leaves sweeping to the API).
        self.sweeps: SweepSchedule | None = None

    def run(self) -> None:
        while True:
            self.beat()
            if self.stopped.wait(self.interval_s):
                return

    def beat(self) -> None:
        announcement = WorkerAnnouncement(name=self.name, host=socket.gethostname(),
                                          pid=os.getpid(), queue=self.worker.queue_names()[0],
                                          pipelines=self.models.status())
        for lane in self.lanes:
            running = lane.running_transcription_id()
            if running is None or self.stamp is None:
                continue
            try:  # the database, not Redis, decides whether this worker is alive
                if not self.stamp(running, lane.name):
                    log.info("transcription %s is no longer this worker's", running)
            except Exception as exc:
                log.warning("could not stamp transcription %s: %s", running, exc)
        try:
            self.redis.set(self.key, announcement.to_json(), ex=self.interval_s * 3)
            for lane in self.lanes:
                lane.beat_for_running_job()
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
    if settings.worker_nice:  # first, so that every thread started from here inherits it
        lower_priority(settings.worker_nice)
    configure_logging(settings.log_level, settings.log_format)
    serve_worker_metrics(settings.worker_metrics_port, "worker")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    catalog = load_catalog(settings)
    cores = cpu_cores(settings)
    device = resolve_device(catalog.default.device, catalog.default.compute_type)[0]
    concurrency = default_concurrency(settings, device, cores)
    cpu_threads = threads_per_job(settings, concurrency, cores)
    models = ModelCache(catalog, hf_token=settings.hf_token, load=engine_loader(
        settings, parallel_jobs=concurrency, cpu_threads=cpu_threads))
    redis = Redis.from_url(settings.redis_url)
    name = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
    database, storage = Database.from_settings(settings), storage_from_settings(settings)
    queue = JobQueue(settings)
    media = MediaStore.from_settings(settings, storage)

    def context(worker_name: str) -> WorkerContext:
        return WorkerContext(settings=settings, db=database, catalog=catalog, models=models,
                             worker_name=worker_name, media=media)

    if concurrency == 1:
        lanes: list[TranscriptionWorker] = [
            TranscriptionWorker([settings.queue_name], connection=redis, name=name)]
    else:
        lanes = [LaneWorker([settings.queue_name], connection=Redis.from_url(settings.redis_url),
                            name=f"{name}-{number}") for number in range(1, concurrency + 1)]
    heartbeat = Heartbeat(lanes[0], models, redis, settings.worker_heartbeat_s,
                          stamp=lambda running, lane: stamp_heartbeat(database, running, lane),
                          lanes=lanes, name=name)
    heartbeat.start()  # announces "loading" while the models load
    if sweeps_here(settings):
        heartbeat.sweeps = SweepSchedule(settings, database, storage)
    for lane in lanes:
        lane.stop_grace = StopGrace(database, queue, lane.name, lane.running_transcription_id,
                                    settings.recovery.worker_stop_grace_s)
    if concurrency == 1:
        lanes[0].stop_grace.install()
    recovery = RecoverySchedule(settings, database, queue)
    try:
        models.load_all()
        _share_torch_threads(concurrency * cpu_threads)
        heartbeat.beat()
        install_context(context(name))
        log.info("worker %s ready: %d job(s) at once, %d CPU thread(s) each; %s", name,
                 concurrency, cpu_threads, models.status())
        if not burst:
            recovery.ensure_running()
        if concurrency == 1:
            _work_through_outages(lanes[0], redis, burst, settings.log_level)
        else:
            _run_lanes(lanes, context, burst, settings.log_level)
    finally:
        recovery.stop()
        for lane in lanes:
            if lane.stop_grace is not None:
                lane.stop_grace.cancel()
        heartbeat.stop()
    return 0


def lower_priority(niceness: int) -> None:
    """Add ``niceness`` to every thread of this process. Linux nices threads one by one, and
    imports (torch, CTranslate2) may have started thread pools before the worker ran; threads
    started later inherit the niceness of the thread that starts them."""
    try:
        threads = [int(task.name) for task in Path("/proc/self/task").iterdir()]
    except OSError:  # no /proc: the calling thread only
        os.nice(niceness)
        return
    for thread in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(current + niceness, 19))


def _share_torch_threads(threads: int) -> None:
    """Diarization (torch) gets the same CPU budget as speech recognition, where loaded."""
    torch = sys.modules.get("torch")
    if torch is not None and threads < torch.get_num_threads():
        torch.set_num_threads(max(1, threads))


def _run_lanes(lanes: Sequence[TranscriptionWorker], context: Callable[[str], WorkerContext],
               burst: bool, log_level: str) -> None:
    """Run each lane's RQ loop in a thread of its own until all have ended; the main thread
    keeps the signals: the first SIGTERM/SIGINT stops every lane softly (each job gets the
    stop grace), a second hands every running job back at once."""
    def run(lane: TranscriptionWorker) -> None:
        install_context(context(lane.name), this_thread=True)
        try:
            _work_through_outages(lane, lane.connection, burst, log_level)
        except BaseException:
            log.exception("worker lane %s ended on an error", lane.name)

    threads = [threading.Thread(target=run, args=(lane,), name=f"voxhook-lane-{number}",
                                daemon=True) for number, lane in enumerate(lanes, start=1)]
    for lane, thread in zip(lanes, threads, strict=True):
        if lane.stop_grace is not None:
            lane.stop_grace.interrupt = interrupt_thread(thread)
    stops = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stops
        stops += 1
        log.info("worker: signal %d, %s stop of %d lane(s)", signum,
                 "warm" if stops == 1 else "cold", len(lanes))
        for lane in lanes:
            if isinstance(lane, LaneWorker):
                lane.stop_softly()
            if stops > 1 and lane.stop_grace is not None and lane.running_job is not None:
                lane.stop_grace.hand_back_now()

    previous = {signum: signal.signal(signum, on_signal)
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=0.5)  # returns often, so signals are handled
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
