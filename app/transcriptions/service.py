"""The transcription service: turn a validated request into a queued job, look jobs up and
list them, cancel them, delete them.

Views hand over what the schema loaded; this module checks it against the pipeline
catalogue, stores the row (with its idempotency record, and for an upload the claim of it, in
one transaction), enqueues the job and answers. It knows nothing of HTTP beyond the errors it
raises.

Cancelling and deleting race with the worker, so every change of status is a conditional
UPDATE (``… WHERE status IN ('queued', 'processing')``): whichever side writes first wins,
and the other sees a final row and stands back (the worker checks the row as it reports
progress, and stops).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from app.billing import wallet
from app.billing.keys import Caller
from app.errors import (
    IdempotencyKeyReused,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
    TranscriptionNotCancellable,
    ValidationFailed,
)
from app.media.netguard import Resolver
from app.media.storage import MediaStorage
from app.media.uploads import claim_upload, release_upload
from app.observability.metrics import TRANSCRIPTIONS_CREATED
from app.store.db import Database
from app.store.models import (
    IdempotencyRecord,
    Surface,
    Transcription,
    TranscriptionStatus,
    Upload,
    UploadStatus,
    new_id,
    utcnow,
)
from app.transcriptions.engine_options import with_analyses
from app.transcriptions.idempotency import Idempotency, find_record
from app.transcriptions.listing import ListQuery, Page, unknown_cursor
from app.transcriptions.pipelines import (
    Pipeline,
    PipelineCatalog,
    check_capabilities,
    resolve_pipeline,
)
from app.transcriptions.queue import JobQueue
from app.transcriptions.waiting import announce_final
from app.webhooks.service import check_delivery_url

log = logging.getLogger(__name__)


#: Renders the response of a creation: (status code, JSON body).
Renderer = Callable[[Transcription], tuple[int, dict[str, Any]]]


class Created(NamedTuple):
    """The answer to a creation, and whether it is the replay of an earlier one (then nothing
    new was made, and a file uploaded with this request is not needed)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


#: What a cancelled transcription says, on both surfaces.
CANCELLED_CODE = "cancelled"


CANCELLED_MESSAGE = ("The transcription was cancelled at the user's request before it "
                     "finished; nothing was charged. Send it again to transcribe the file.")


class TranscriptionService:
    """Creates, finds, lists, cancels and deletes transcriptions for authenticated callers."""

    def __init__(self, db: Database, queue: JobQueue, catalog: PipelineCatalog,
                 storage: MediaStorage | None = None, media_retention_s: int = 0,
                 billing_enforced: bool = False,
                 webhook_resolver: Resolver | None = None) -> None:
        self.db = db
        self.queue = queue
        self.catalog = catalog
        #: Checks a ``webhook_url`` against server-side request forgery when it is given
        #: (the operator's allowlist and connect-to; default: public addresses only).
        self.webhook_resolver = webhook_resolver or Resolver()
        #: VOXHOOK_BILLING=on: an account with nothing available is refused (402).
        self.billing_enforced = billing_enforced
        #: Where uploads are stored, and how long media is kept after its job ends
        #: (``VOXHOOK_MEDIA_RETENTION_HOURS``): what cancelling a queued job and deleting
        #: a transcription need to let go of its media.
        self.storage = storage
        self.media_retention_s = media_retention_s

    def check(self, payload: dict[str, Any]) -> Pipeline:
        """The pipeline the request names, if it can do what is asked, and a webhook_url
        the service may post to; a 422 otherwise. (Also run before a one-request upload
        stores its file.)"""
        pipeline = resolve_pipeline(self.catalog, payload.get("pipeline_code"))
        check_capabilities(pipeline, payload)
        if payload.get("webhook_url"):
            check_delivery_url(payload["webhook_url"], self.webhook_resolver, "webhook_url")
        return pipeline

    def create(self, caller: Caller, surface: Surface, payload: dict[str, Any],
               render: Renderer, idempotency: Idempotency | None = None) -> Created:
        """Create, store and enqueue a transcription; replay the first answer for a repeat.

        With ``source: "upload"`` the upload is claimed in the same transaction as the row is
        inserted, so a refused claim leaves nothing behind, and a replay (whose upload is
        now used) is answered before any claim is tried.
        """
        pipeline = self.check(payload)
        if idempotency is not None:
            replay = self._replay(caller, idempotency)
            if replay is not None:
                return replay
        self.check_funds(caller)
        language = payload.get("language")
        upload_id = payload.get("upload_id")
        transcription = Transcription(
            id=new_id("tr"),
            account_id=caller.account_id,
            api_key_id=caller.key_id,
            surface=surface,
            status=TranscriptionStatus.QUEUED,
            source="upload" if upload_id else "external_url",
            url=None if upload_id else payload["url"],
            upload_id=upload_id,
            pipeline_code=pipeline.code,
            language=None if language == "auto" else language,
            # Diarization needs word timings, so it forces alignment on.
            align=bool(payload.get("align", True) or payload.get("diarize")),
            diarize=bool(payload.get("diarize")),
            speaker_count=payload.get("speaker_count"),
            min_speakers=payload.get("min_speakers"),
            max_speakers=payload.get("max_speakers"),
            webhook_url=payload.get("webhook_url"),
            engine_options=with_analyses(payload.get("engine_options"),
                                         payload.get("analysis")),
            progress=0.0,
            created_at=utcnow(),
        )
        status, body = render(transcription)
        try:
            with self.db.session() as session:
                if upload_id:
                    claim_upload(session, caller.account_id, upload_id, transcription.id)
                session.add(transcription)
                if idempotency is not None:
                    session.flush()
                    session.add(IdempotencyRecord(
                        account_id=caller.account_id, key=idempotency.key,
                        request_fingerprint=idempotency.fingerprint, response_status=status,
                        response_body=body, transcription_id=transcription.id))
        except (IntegrityError, ValidationFailed):
            # Another request with the same key won the race (it inserted the record, or
            # claimed the upload first); its answer is ours.
            replay = self._replay(caller, idempotency) if idempotency is not None else None
            if replay is None:
                raise
            return replay
        self._enqueue(transcription, idempotency)
        TRANSCRIPTIONS_CREATED.labels(pipeline.code, str(surface)).inc()
        return Created(status, body)

    def check_funds(self, caller: Caller) -> None:
        """With billing on, a 402 for an account that has nothing available at all.

        Only "nothing at all" is refused here: the cost is known once the file is decoded,
        and a job the account cannot cover then fails with ``insufficient_balance``.
        """
        if not self.billing_enforced:
            return
        with self.db.session() as session:
            if wallet.has_funds(session, caller.account_id):
                return
        raise PaymentRequired(
            "The account has no funds available (its monthly credit is used up and its "
            "top-up balance is empty): top up the wallet (the operator runs `voxhook wallet "
            "topup ACCOUNT --usd 5.00`), then send the request again.",
            available_usd="0.000000")

    def get(self, caller: Caller, transcription_id: str) -> Transcription:
        """The caller's transcription; another account's is answered as if it did not exist."""
        with self.db.session() as session:
            transcription = session.get(Transcription, transcription_id)
            if (transcription is None or transcription.account_id != caller.account_id
                    or transcription.deleted_at is not None):
                raise NotFound(f"No transcription '{transcription_id}' for this API key's "
                               "account.")
            return transcription

    def page(self, caller: Caller, query: ListQuery) -> Page:
        """The caller's transcriptions, newest first, a page at a time (keyset pagination).

        The order is (created_at, id), both descending: a total order, so every
        transcription has one place in it. ``starting_after`` names the last one of the
        previous page and the page holds what comes after it in that order, so transcriptions
        created meanwhile (they sort first) never shift a later page: paging through returns
        each transcription that existed at the start exactly once.
        """
        with self.db.session() as session:
            statement = (select(Transcription)
                         .where(Transcription.account_id == caller.account_id,
                                Transcription.deleted_at.is_(None))
                         .order_by(Transcription.created_at.desc(), Transcription.id.desc())
                         .limit(query.limit + 1))
            if query.starting_after is not None:
                cursor = session.execute(
                    select(Transcription.created_at, Transcription.id).where(
                        Transcription.id == query.starting_after,
                        Transcription.account_id == caller.account_id,
                        Transcription.deleted_at.is_(None))).first()
                if cursor is None:
                    raise unknown_cursor(query.starting_after)
                statement = statement.where(
                    tuple_(Transcription.created_at, Transcription.id) < tuple_(*cursor))
            if query.statuses:
                statement = statement.where(Transcription.status.in_(query.statuses))
            if query.created_after is not None:
                statement = statement.where(Transcription.created_at >= query.created_after)
            if query.created_before is not None:
                statement = statement.where(Transcription.created_at < query.created_before)
            if not query.include_result:
                statement = statement.options(defer(Transcription.result))
            rows = list(session.scalars(statement))
        return Page(items=rows[:query.limit], has_more=len(rows) > query.limit)

    def cancel(self, caller: Caller, transcription_id: str) -> Transcription:
        """Stop a queued or processing transcription; it ends ``cancelled`` and costs nothing.

        A queued job is taken off the queue and its uploaded file let go of at once; a
        processing one is stopped by its worker, which notices the cancellation within a
        progress report or two, releases what it reserved and lets go of the media. A
        cancelled one is answered again (repeating a cancel is harmless); a completed or
        failed one is a 409: there is nothing left to stop.
        """
        found = self.get(caller, transcription_id)
        cancelled_from = self._mark_cancelled(found.id)
        row = self.get(caller, transcription_id)  # 404 if it was deleted meanwhile
        if cancelled_from is not None:  # wake requests waiting for it (?wait=, OpenAI)
            announce_final(self.queue.redis, self.queue.queue.name, row.id)
        if cancelled_from == TranscriptionStatus.QUEUED:
            self._dequeue(row.queue_job_id or row.id)
            self._release_unstarted_media(row)
        elif cancelled_from is None and row.status != TranscriptionStatus.CANCELLED:
            raise TranscriptionNotCancellable(
                f"Transcription '{row.id}' is already {row.status}, so there is nothing to "
                "cancel. To remove it and its media, DELETE /api/v1/transcriptions/"
                f"{row.id}.", status=str(row.status))
        return row

    def _mark_cancelled(self, transcription_id: str) -> TranscriptionStatus | None:
        """Cancel the row with a conditional UPDATE; the status it was cancelled from, or
        None when it was final already (then nothing changed).

        What the wallet holds for the job is released in the same transaction, so the
        balance is right at once; the worker's own release when it stops is then a no-op.
        """
        now = utcnow()
        with self.db.session() as session:
            for status in TranscriptionStatus.unfinished():
                taken = session.execute(
                    update(Transcription)
                    .where(Transcription.id == transcription_id, Transcription.status == status)
                    .values(status=TranscriptionStatus.CANCELLED, completed_at=now,
                            error_code=CANCELLED_CODE, error_message=CANCELLED_MESSAGE,
                            cost_micro_usd=None)
                    .execution_options(synchronize_session=False))
                if taken.rowcount == 1:
                    wallet.release(session, transcription_id, now)
                    log.info("transcription %s cancelled while %s", transcription_id, status)
                    return status
        return None

    def delete(self, caller: Caller, transcription_id: str) -> None:
        """Remove a transcription's transcript and media; a running job is cancelled first.

        The row stays, marked ``deleted_at`` and stripped of the transcript, URL and webhook:
        both surfaces answer 404 for it and listings skip it, but what it cost stays, so
        usage per key still adds up to what the account was charged.

        Its idempotency records go too, so the ``Idempotency-Key`` that created it may be
        used afresh: a replay would answer an id that no longer exists. Media is deleted
        before the rows: should the database fail in between, a retry finds the row and
        deletes again (deleting a missing object is harmless), and nothing is left behind.
        """
        row = self.get(caller, transcription_id)
        if not TranscriptionStatus(row.status).is_final:
            with contextlib.suppress(TranscriptionNotCancellable):  # it ended meanwhile
                self.cancel(caller, transcription_id)
            row = self.get(caller, transcription_id)
        with self.db.session() as session:
            upload = session.get(Upload, row.upload_id) if row.upload_id else None
        for key in {row.media_key, upload.storage_key if upload else None} - {None}:
            self._storage().delete(key)
        with self.db.session() as session:
            session.execute(delete(IdempotencyRecord)
                            .where(IdempotencyRecord.transcription_id == row.id)
                            .execution_options(synchronize_session=False))
            if upload is not None:
                session.execute(update(Upload).where(Upload.id == upload.id)
                                .values(status=UploadStatus.DELETED)
                                .execution_options(synchronize_session=False))
            # The transcript goes; what was spent stays for usage and the ledger.
            session.execute(update(Transcription)
                            .where(Transcription.id == row.id,
                                   Transcription.account_id == caller.account_id)
                            .values(deleted_at=utcnow(), result=None, url=None,
                                    webhook_url=None, media_key=None, media_delete_after=None)
                            .execution_options(synchronize_session=False))
        log.info("transcription %s deleted with its media", row.id)

    def _dequeue(self, job_id: str) -> None:
        """Take a cancelled job off the queue. Should Redis be away, the cancellation stands
        all the same: a worker that takes the job finds the row final and skips it."""
        try:
            self.queue.cancel(job_id)
        except Exception as exc:
            log.warning("job %s: cancelled, but it could not be taken off the queue (%s); a "
                        "worker will skip it", job_id, exc)

    def _release_unstarted_media(self, row: Transcription) -> None:
        """A job cancelled before it started: its uploaded file goes now, or after the
        retention time like any job's media (the media sweep then deletes it)."""
        if not row.upload_id:
            return  # a URL: nothing was downloaded
        with self.db.session() as session:
            upload = session.get(Upload, row.upload_id)
            if upload is None or not upload.storage_key:
                return
            if self.media_retention_s > 0:
                kept = session.get(Transcription, row.id)
                if kept is not None:
                    kept.media_key = upload.storage_key
                    kept.media_delete_after = utcnow() + timedelta(
                        seconds=self.media_retention_s)
                return
            upload.status = UploadStatus.DELETED
            key = upload.storage_key
        self._storage().delete(key)

    def _storage(self) -> MediaStorage:
        if self.storage is None:
            raise RuntimeError("TranscriptionService needs media storage to delete media")
        return self.storage

    def _replay(self, caller: Caller, idempotency: Idempotency) -> Created | None:
        with self.db.session() as session:
            record = find_record(session, caller.account_id, idempotency.key)
            if record is None:
                return None
            if record.request_fingerprint != idempotency.fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request; use a "
                    "new key for a new request.",
                    fields={"Idempotency-Key": ["Already used with another body or path."]})
            log.info("idempotent replay of transcription %s", record.transcription_id)
            return Created(record.response_status, record.response_body, replayed=True)

    def _enqueue(self, transcription: Transcription, idempotency: Idempotency | None) -> None:
        try:
            self.queue.enqueue_transcription(transcription.id)
        except Exception as exc:  # Redis down or unreachable: nothing may stay stuck.
            log.error("transcription %s could not be queued: %s", transcription.id, exc)
            with self.db.session() as session:
                row = session.get(Transcription, transcription.id)
                if row is not None:
                    row.status = TranscriptionStatus.FAILED
                    row.error_code = "queue_unavailable"
                    row.error_message = "The job queue was unreachable; send the request again."
                    row.completed_at = utcnow()
                    if row.upload_id:  # the retry needs the upload back
                        upload_id, row.upload_id = row.upload_id, None
                        session.flush()
                        release_upload(session, upload_id, row.id)
                if idempotency is not None:
                    # Let a retry with the same key create the job afresh.
                    record = find_record(session, transcription.account_id, idempotency.key)
                    if record is not None:
                        session.delete(record)
            raise ServiceUnavailable(
                "The job queue is unreachable right now; retry in a few seconds.") from exc
