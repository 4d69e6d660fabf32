"""The transcription service: turn a validated request into a queued job, and look jobs up.

Views hand over what the schema loaded; this module checks it against the pipeline
catalogue, stores the row (with its idempotency record, and for an upload the claim of it, in
one transaction), enqueues the job and answers. It knows nothing of HTTP beyond the errors it
raises.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import Caller
from app.db import Database
from app.errors import IdempotencyKeyReused, NotFound, ServiceUnavailable, ValidationFailed
from app.models import (
    IdempotencyRecord,
    Surface,
    Transcription,
    TranscriptionStatus,
    new_id,
    utcnow,
)
from app.pipelines import Pipeline, PipelineCatalog
from app.queue import JobQueue
from app.uploads import claim_upload, release_upload

log = logging.getLogger(__name__)

#: Renders the response of a creation: (status code, JSON body).
Renderer = Callable[[Transcription], tuple[int, dict[str, Any]]]


class Created(NamedTuple):
    """The answer to a creation, and whether it is the replay of an earlier one (then nothing
    new was made, and a file uploaded with this request is not needed)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` and the fingerprint of the request that carried it."""

    key: str
    fingerprint: str

    @classmethod
    def from_request(cls, key: str | None, method: str, path: str,
                     payload: Any) -> Idempotency | None:
        """``payload`` is what identifies the request: the loaded body (for a one-request
        upload, its fields with the file's size and SHA-256 instead of an upload id)."""
        key = cls.check_key(key)
        if key is None:
            return None
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()
        return cls(key=key, fingerprint=digest)

    @staticmethod
    def check_key(key: str | None) -> str | None:
        """The header's key, stripped; a 422 when it is empty or too long (checked before a
        one-request upload stores its file)."""
        if key is None:
            return None
        key = key.strip()
        if not key or len(key) > 255:
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 255 characters.",
                fields={"Idempotency-Key": ["Must be 1 to 255 characters."]})
        return key


def resolve_pipeline(catalog: PipelineCatalog, code: str | None) -> Pipeline:
    """The pipeline a request names (or the default); a 422 listing the codes otherwise."""
    pipeline = catalog.find(code)
    if pipeline is None:
        available = catalog.codes()
        raise ValidationFailed(
            f"Unknown pipeline_code '{code}'. Available: {', '.join(available)}.",
            fields={"pipeline_code": [f"Unknown; choose one of: {', '.join(available)}."]},
            available_pipeline_codes=available)
    return pipeline


def check_capabilities(pipeline: Pipeline, payload: dict[str, Any]) -> None:
    """Refuse what the chosen pipeline cannot do, naming the field and the way out."""
    language = payload.get("language")
    if language and language != "auto" and language not in pipeline.languages:
        raise ValidationFailed(
            f"Pipeline '{pipeline.code}' does not know the language '{language}'.",
            fields={"language": [f"Not supported by pipeline '{pipeline.code}'; see "
                                 "GET /api/v1/pipelines for its languages, or omit it."]})
    if payload.get("diarize") and not pipeline.can_diarize:
        raise ValidationFailed(
            f"Pipeline '{pipeline.code}' cannot label speakers on this server.",
            fields={"diarize": ["This pipeline has no diarization model configured: send "
                                "diarize: false, or choose a pipeline with can_diarize in "
                                "GET /api/v1/pipelines."]})


class TranscriptionService:
    """Creates and finds transcriptions for authenticated callers."""

    def __init__(self, db: Database, queue: JobQueue, catalog: PipelineCatalog) -> None:
        self.db = db
        self.queue = queue
        self.catalog = catalog

    def check(self, payload: dict[str, Any]) -> Pipeline:
        """The pipeline the request names, if it can do what is asked; a 422 otherwise.
        (Also run before a one-request upload stores its file.)"""
        pipeline = resolve_pipeline(self.catalog, payload.get("pipeline_code"))
        check_capabilities(pipeline, payload)
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
        return Created(status, body)

    def get(self, caller: Caller, transcription_id: str) -> Transcription:
        """The caller's transcription; another account's is answered as if it did not exist."""
        with self.db.session() as session:
            transcription = session.get(Transcription, transcription_id)
            if transcription is None or transcription.account_id != caller.account_id:
                raise NotFound(f"No transcription '{transcription_id}' for this API key's "
                               "account.")
            return transcription

    def _replay(self, caller: Caller, idempotency: Idempotency) -> Created | None:
        with self.db.session() as session:
            record = _find_record(session, caller.account_id, idempotency.key)
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
                    record = _find_record(session, transcription.account_id, idempotency.key)
                    if record is not None:
                        session.delete(record)
            raise ServiceUnavailable(
                "The job queue is unreachable right now; retry in a few seconds.") from exc


def _find_record(session: Session, account_id: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key))
