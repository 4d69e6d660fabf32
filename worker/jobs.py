"""RQ entry points: load the transcription, run the pipeline, store the outcome.

``run_transcription`` is enqueued by dotted path from the API. It runs in a worker process
whose models were loaded at start (see :mod:`worker.main`), which installs the
:class:`WorkerContext` here before taking jobs. A job that is run again (a retry after a
crash) resumes only unfinished transcriptions, so a result is never overwritten.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from redis import Redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.billing import wallet
from app.billing.pricing import (
    micro_usd_to_usd,
    per_item_cost_micro_usd,
    per_minute_cost_micro_usd,
    quickstart_cost_micro_usd,
)
from app.config import Settings
from app.observability.context import request_id
from app.observability.metrics import record_finished
from app.store.db import Database
from app.store.models import (
    Surface,
    Transcription,
    TranscriptionStatus,
    Upload,
    UploadStatus,
    WebhookDelivery,
    utcnow,
)
from app.transcriptions.engine_options import EngineOptions
from app.transcriptions.pipelines import PipelineCatalog
from app.transcriptions.queue import JobQueue
from app.transcriptions.recovery import reap_lost_jobs
from app.transcriptions.representation import stored_result
from app.webhooks.doorbell import ring_doorbell
from app.webhooks.events import record_transcription_event
from worker.analysis.runner import completed_count
from worker.deadline import extend_deadline
from worker.errors import (
    Cancelled,
    InsufficientBalance,
    InternalFailure,
    JobTimedOut,
    PipelineError,
)
from worker.media.store import MediaStore
from worker.notify import SegmentPublisher, job_ended
from worker.speech.diarization import SpeakerConstraints
from worker.speech.model_cache import ModelCache
from worker.speech.pipeline import JobSpec, run_pipeline
from worker.stage_holds import hold_if_asked
from worker.stopping import interruptible

log = logging.getLogger(__name__)

#: Progress is written to the database at most this often, in seconds.
PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class WorkerContext:
    """What every job of this worker process shares: settings, database, warm models."""

    settings: Settings
    db: Database
    catalog: PipelineCatalog
    models: ModelCache
    media: MediaStore
    worker_name: str


_context: WorkerContext | None = None
#: A worker running several jobs at once gives each of its job threads a context of its own
#: (attribute ``context``): same models, its own ``worker_name``, the fence of its jobs.
_thread_context = threading.local()


def install_context(context: WorkerContext | None, *, this_thread: bool = False) -> None:
    """Called once by the worker before it takes jobs (None removes it); ``this_thread``:
    for the jobs run by the calling thread only."""
    global _context
    if this_thread:
        _thread_context.context = context
    else:
        _context = context


def _installed() -> WorkerContext | None:
    return getattr(_thread_context, "context", None) or _context


def current_context() -> WorkerContext:
    context = _installed()
    if context is None:
        raise RuntimeError("run_transcription needs a Voxhook worker (`voxhook worker`), "
                           "which loads the models first")
    return context


def run_transcription(transcription_id: str) -> str:
    """Transcribe one queued transcription; returns its final status.

    The request id of the request that created it (the job's meta) is on every log line."""
    job = get_current_job()
    token = request_id.set(job.meta.get("request_id") if job is not None else None)
    try:
        context = current_context()
        spec = _start(context, transcription_id)
        if spec is None:
            return "skipped"
        work_dir = context.settings.data_dir / "media" / "work" / transcription_id
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            return _run(context, spec, work_dir)
        finally:
            _release_media(context, spec, work_dir)
    finally:
        request_id.reset(token)


def _run(context: WorkerContext, spec: JobSpec, work_dir: Path) -> str:
    transcription_id = spec.transcription_id
    hooks = _JobHooks(context, transcription_id)
    try:
        with interruptible():  # a stop's interruption lands here, in the pipeline only
            outcome = run_pipeline(spec, context.models, context.settings, context.media,
                                   hooks, work_dir)
    except Cancelled:
        log.info("transcription %s is no longer this worker's (cancelled, deleted or handed "
                 "back); stopped", transcription_id)
        with context.db.session() as session:
            _release_unless_retried(session, transcription_id)
        return "stopped"
    except PipelineError as exc:
        return _finish_failed(context, transcription_id, exc)
    except JobTimeoutException:
        log.error("transcription %s ran past its deadline", transcription_id)
        return _finish_failed(context, transcription_id, JobTimedOut(
            "The transcription took longer than allowed and was stopped: try again, or send "
            "a shorter file."))
    except Exception:
        log.exception("transcription %s failed with an unexpected error", transcription_id)
        _finish_failed(context, transcription_id, InternalFailure(
            "The server failed while transcribing this file; the operator has the details "
            "in the worker's log. Try again later."))
        raise  # RQ records the traceback in its failed-job registry
    hooks.on_stage("store")
    # The result and the charge commit together: a crash leaves neither or both, and a
    # retried job finds the row completed and skips it, so nothing is charged twice.
    with context.db.session() as session:
        completed_at = _take_for_ending(session, transcription_id, context.worker_name,
                                        TranscriptionStatus.COMPLETED)
        if completed_at is None:  # cancelled, deleted or handed back meanwhile
            return _release_unless_retried(session, transcription_id)
        row = session.get(Transcription, transcription_id, populate_existing=True)
        assert row is not None
        row.completed_at = completed_at
        row.result = stored_result(outcome.result)
        row.progress = 1.0
        # Analyses that failed are not charged: the hold shrinks to what completed.
        row.cost_micro_usd = cost_micro_usd(context, row, outcome.duration_s,
                                            completed_count(outcome.result))
        wallet.shrink(session, transcription_id, row.cost_micro_usd)
        charged = wallet.charge(session, transcription_id, row.completed_at)
        announced = record_transcription_event(session, row, row.completed_at)
    _ring(context.settings, announced)
    job_ended(context.settings, transcription_id)
    record_finished(spec.pipeline_code, "completed", timings=outcome.timings,
                    duration_s=outcome.duration_s, charged_micro_usd=charged)
    log.info("transcription %s completed: %.2f s of audio%s", transcription_id,
             outcome.duration_s, f", {charged} micro-USD charged" if charged else "")
    return TranscriptionStatus.COMPLETED


def _take_for_ending(session: Session, transcription_id: str, worker_name: str,
                     status: TranscriptionStatus) -> datetime | None:
    """Move the row from ``processing`` by ``worker_name`` to the final ``status``, in one
    conditional UPDATE; when it ended, or None when it was no longer this worker's to end.

    The UPDATE is the fence against a hand-back (a stopping worker's, or the recovery's of a
    worker taken for dead) committed after the job last looked: both are conditional UPDATEs
    of the same row, so exactly one wins, and the loser changes nothing. A read-then-write
    here would complete a row that was already queued again, and charge a released hold.
    """
    now = utcnow()
    taken = session.execute(
        update(Transcription)
        .where(Transcription.id == transcription_id,
               Transcription.status == TranscriptionStatus.PROCESSING,
               Transcription.worker_name == worker_name)
        .values(status=status, completed_at=now)
        .execution_options(synchronize_session=False))
    return now if taken.rowcount == 1 else None


def on_job_failure(job: Job, connection: Redis | None, exc_type: type[BaseException] | None,
                   exc_value: BaseException | None, tb: object) -> None:
    """RQ's failure callback: no transcription stays ``processing`` when its job is lost.

    RQ calls it when a job raised (``_run`` has already failed the row then), and when it
    finds a job abandoned because its worker died, which it notices only once the job's
    timeout has run out. Worker death is :mod:`app.transcriptions.recovery`'s business (noticed
    within
    ``worker_lost_after_s``, retried once, then ``worker_lost``), so this runs a reaping
    pass, which touches the row only if its worker has really stopped stamping it.
    """
    context = _installed()
    settings = context.settings if context else Settings.from_env()
    database = context.db if context else Database.from_settings(settings)
    transcription_id = job.args[0] if job.args else job.id
    log.warning("transcription %s: RQ reports job %s failed (%s)", transcription_id, job.id,
                exc_type.__name__ if exc_type else "unknown")
    reap_lost_jobs(database, JobQueue(settings, connection), settings)


def cost_micro_usd(context: WorkerContext, row: Transcription, duration_s: float,
                   analyses: int | None = None) -> int:
    """The cost of ``duration_s`` seconds at the price of the surface that created ``row``,
    plus ``analyses`` AI analyses at the pipeline's price each (default: as many as asked)."""
    pipeline = context.catalog.find(row.pipeline_code) or context.catalog.default
    if analyses is None:
        analyses = len(EngineOptions.from_json(row.engine_options).analyses)
    extra = per_item_cost_micro_usd(analyses, pipeline.price_per_analysis_usd)
    if row.surface == Surface.QUICKSTART:
        return quickstart_cost_micro_usd(duration_s) + extra
    return per_minute_cost_micro_usd(duration_s, pipeline.price_per_minute_usd) + extra


def _start(context: WorkerContext, transcription_id: str) -> JobSpec | None:
    """Claim the transcription for this worker, unless it is final (or gone).

    One conditional UPDATE claims it, so a cancellation that lands at the same moment either
    comes first (and the job is skipped) or after (and the running job notices it). Only a
    ``queued`` row is claimed: a ``processing`` one belongs to a live worker, or to a dead
    one that :mod:`app.transcriptions.recovery` hands back; a duplicate of its job is skipped.
    """
    now = utcnow()
    with context.db.session() as session:
        claimed = session.execute(
            update(Transcription)
            .where(Transcription.id == transcription_id,
                   Transcription.status == TranscriptionStatus.QUEUED)
            .values(status=TranscriptionStatus.PROCESSING, started_at=now, heartbeat_at=now,
                    worker_name=context.worker_name, progress=0.0)
            .execution_options(synchronize_session=False))
        row = session.get(Transcription, transcription_id)
        if row is None:
            log.warning("transcription %s no longer exists; skipping", transcription_id)
            return None
        if claimed.rowcount != 1:
            log.info("transcription %s is already %s; skipping", transcription_id, row.status)
            return None
        log.info("transcription %s started on %s (pipeline %s)", transcription_id,
                 context.worker_name, row.pipeline_code)
        upload = session.get(Upload, row.upload_id) if row.upload_id else None
        return JobSpec(transcription_id=row.id, url=row.url,
                       upload_id=row.upload_id,
                       upload_key=upload.storage_key if upload is not None else None,
                       pipeline_code=row.pipeline_code, language=row.language,
                       align=row.align or row.diarize, diarize=row.diarize,
                       speakers=SpeakerConstraints(exact=row.speaker_count,
                                                   minimum=row.min_speakers,
                                                   maximum=row.max_speakers),
                       options=EngineOptions.from_json(row.engine_options))


def _release_media(context: WorkerContext, spec: JobSpec, work_dir: Path) -> None:
    """The job has ended here: delete its media, or keep it for the retention time and say
    until when. A transcription that went back to the queue (its worker is stopping, or was
    taken for dead) keeps its upload for the next attempt: only the work folder goes. A
    failure here is logged; it never changes the transcription's outcome."""
    try:
        with context.db.session() as session:
            row = session.get(Transcription, spec.transcription_id)
            gone = row is None or row.deleted_at is not None
            again = not gone and not TranscriptionStatus(row.status).is_final
        if again:
            log.info("transcription %s: media left for its next attempt",
                     spec.transcription_id)
            return
        # A transcription deleted mid-job has no row to record kept media on: delete it.
        kept = context.media.release(spec.media, work_dir, utcnow(), keep=not gone)
        with context.db.session() as session:
            row = session.get(Transcription, spec.transcription_id)
            if row is not None and kept is not None:
                row.media_key, row.media_delete_after = kept.key, kept.delete_after
            upload = session.get(Upload, spec.upload_id) if spec.upload_id else None
            if upload is not None and kept is None:
                upload.status = UploadStatus.DELETED
        if kept is not None:
            log.info("transcription %s: media kept as %s until %s", spec.transcription_id,
                     kept.key, kept.delete_after.isoformat(timespec="seconds"))
    except Exception:
        log.exception("transcription %s: its media could not be released",
                      spec.transcription_id)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _ring(settings: Settings, announced: list[WebhookDelivery]) -> None:
    """Wake the webhook dispatcher for deliveries just committed (it polls anyway)."""
    if announced:
        with Redis.from_url(settings.redis_url) as redis:
            ring_doorbell(redis, settings)


def _finish_failed(context: WorkerContext, transcription_id: str,
                   error: PipelineError) -> str:
    """Fail the transcription with ``error``, if it is still this worker's; returns its
    status now. A row that was cancelled, deleted or handed back meanwhile keeps what it
    is: the error may be the stop's own doing (a socket shut under a download), and is
    no fault of the customer's file."""
    with context.db.session() as session:
        failed_at = _take_for_ending(session, transcription_id, context.worker_name,
                                     TranscriptionStatus.FAILED)
        if failed_at is None:
            status = _release_unless_retried(session, transcription_id)
            log.info("transcription %s stopped with %s, but it is %s and no longer this "
                     "worker's: nothing recorded", transcription_id, error.code, status)
            return status
        wallet.release(session, transcription_id)  # a failed job costs nothing
        row = session.get(Transcription, transcription_id, populate_existing=True)
        assert row is not None
        row.completed_at = failed_at
        row.error_code = error.code
        row.error_message = error.message
        row.cost_micro_usd = None
        announced = record_transcription_event(session, row, row.completed_at)
        pipeline_code = row.pipeline_code
    log.warning("transcription %s failed: %s (%s)", transcription_id, error.code,
                error.message)
    _ring(context.settings, announced)
    job_ended(context.settings, transcription_id)
    record_finished(pipeline_code, "failed", error.code)
    return TranscriptionStatus.FAILED


def _release_unless_retried(session: Session, transcription_id: str) -> str:
    """Release the job's hold if its transcription has ended or is gone; a row that went
    back to the queue (or on to another worker) keeps whatever its next attempt holds.
    Returns the transcription's status now (``"deleted"`` when it is gone)."""
    row = session.get(Transcription, transcription_id)
    if row is None or TranscriptionStatus(row.status).is_final:
        wallet.release(session, transcription_id)
    return row.status if row is not None else "deleted"


class _JobHooks:
    """Writes what the pipeline reports to the transcription's row."""

    def __init__(self, context: WorkerContext, transcription_id: str) -> None:
        self.context = context
        self.transcription_id = transcription_id
        self._last_write = 0.0
        self.on_segment = SegmentPublisher(context.settings, transcription_id)

    def on_audio(self, duration_s: float) -> None:
        """The duration is known: record it and the cost, and (billing on) reserve the cost,
        so that the account pays for nothing it cannot afford."""
        extend_deadline(self.context.settings.job_timeouts.for_duration(duration_s))
        with self.context.db.session() as session:
            row = self._running_row(session)
            row.audio_duration_seconds = round(duration_s, 3)
            row.cost_micro_usd = cost = cost_micro_usd(self.context, row, duration_s)
            account_id, api_key_id = row.account_id, row.api_key_id
        if not self.context.settings.billing_enforced:
            return
        try:
            with self.context.db.session() as session:
                wallet.reserve(session, account_id, api_key_id, self.transcription_id, cost,
                               utcnow())
        except wallet.InsufficientFunds as exc:
            raise InsufficientBalance(
                f"The audio is {duration_s:.0f} s long and costs "
                f"{micro_usd_to_usd(cost)} USD, but the account has only "
                f"{micro_usd_to_usd(exc.available_micro_usd)} USD available: top up the "
                "wallet, or send a shorter file. Nothing was charged.") from exc

    def on_stage(self, stage: str) -> None:
        """A stage begins: wait first while the operator holds jobs before it (a drill)."""
        hold_if_asked(self.context.settings.data_dir, self.transcription_id, stage)

    def on_progress(self, fraction: float) -> None:
        """Record progress (at most every PROGRESS_INTERVAL_S) and notice a cancellation."""
        now = time.monotonic()
        if now - self._last_write < PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        with self.context.db.session() as session:
            self._running_row(session).progress = round(min(fraction, 0.99), 3)

    def _running_row(self, session: Session) -> Transcription:
        """The row, still processing by this worker; :class:`Cancelled` when it was
        cancelled, deleted, or handed to another worker (ours was taken for dead)."""
        row = session.get(Transcription, self.transcription_id)
        if (row is None or row.status != TranscriptionStatus.PROCESSING
                or row.worker_name != self.context.worker_name):
            raise Cancelled(self.transcription_id)
        return row
