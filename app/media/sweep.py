"""Deleting media whose time is up; transcripts are never touched.

Media normally goes when its job ends (:mod:`worker.media.store`). What is left for later:
- media kept for ``VOXHOOK_MEDIA_RETENTION_HOURS``: the transcription says which object and
  until when (``media_key``, ``media_delete_after``);
- the file of an upload whose job never released it (its worker was killed mid-job): the
  upload is ``used`` by a transcription that ended more than :data:`ORPHAN_GRACE` ago, and
  no retention was recorded;
- uploads nobody used, and pending uploads whose URL expired.

:func:`sweep_media` does all three. Workers run it every few minutes and
``voxhook media sweep`` runs it on demand; running it twice at once is harmless, since each
deletion first takes its row with a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Update, select, update

from app.config import Settings
from app.media.storage import MediaStorage
from app.store.db import Database
from app.store.models import Transcription, TranscriptionStatus, Upload, UploadStatus, utcnow

log = logging.getLogger(__name__)

#: A used upload still stored this long after its transcription ended was orphaned.
ORPHAN_GRACE = timedelta(hours=1)
#: Rows handled per sweep of each kind (the next sweep takes the rest).
BATCH = 500
_FINAL = tuple(status for status in TranscriptionStatus if status.is_final)


@dataclass(frozen=True)
class SweepReport:
    """How many objects a sweep deleted, by reason."""

    retained: int
    orphaned: int
    unused_uploads: int

    @property
    def total(self) -> int:
        return self.retained + self.orphaned + self.unused_uploads


def sweep_media(settings: Settings, db: Database, storage: MediaStorage,
                now: datetime | None = None) -> SweepReport:
    """Delete every media object whose time is up; returns what was deleted."""
    now = now or utcnow()
    report = SweepReport(retained=_sweep_retained(db, storage, now),
                         orphaned=_sweep_orphaned_uploads(db, storage, now),
                         unused_uploads=_sweep_unused_uploads(db, storage, now))
    if report.total:
        log.info("media sweep: %d kept past retention, %d orphaned, %d unused uploads deleted",
                 report.retained, report.orphaned, report.unused_uploads)
    return report


def _take_and_delete(db: Database, storage: MediaStorage, take: Update, key: str | None,
                     also: Update | None = None) -> bool:
    """Run ``take`` (a conditional UPDATE that claims one row for deletion) and, if it claimed
    the row, delete ``key``. A concurrent sweep, or a transcription claiming an upload, makes
    the UPDATE match nothing, and then nothing is deleted. ``also`` runs in the same
    transaction when the row was taken."""
    with db.session() as session:
        taken = session.execute(take.execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            return False
        if also is not None:
            session.execute(also.execution_options(synchronize_session=False))
    if key:
        storage.delete(key)
    return True


def _sweep_retained(db: Database, storage: MediaStorage, now: datetime) -> int:
    with db.session() as session:
        due = session.execute(
            select(Transcription.id, Transcription.media_key, Transcription.upload_id)
            .where(Transcription.media_delete_after <= now)
            .limit(BATCH)).all()
    deleted = 0
    for transcription_id, key, upload_id in due:
        take = (update(Transcription)
                .where(Transcription.id == transcription_id,
                       Transcription.media_delete_after <= now)
                .values(media_key=None, media_delete_after=None))
        mark_upload = (update(Upload).where(Upload.id == upload_id)
                       .values(status=UploadStatus.DELETED)) if upload_id else None
        if _take_and_delete(db, storage, take, key, also=mark_upload):
            deleted += 1
            log.info("transcription %s: media deleted, its retention time is over",
                     transcription_id)
    return deleted


def _sweep_orphaned_uploads(db: Database, storage: MediaStorage, now: datetime) -> int:
    with db.session() as session:
        orphans = session.execute(
            select(Upload.id, Upload.storage_key, Transcription.id)
            .join(Transcription, Transcription.upload_id == Upload.id)
            .where(Upload.status == UploadStatus.USED,
                   Transcription.status.in_(_FINAL),
                   Transcription.media_key.is_(None),
                   Transcription.completed_at <= now - ORPHAN_GRACE)
            .limit(BATCH)).all()
    deleted = 0
    for upload_id, key, transcription_id in orphans:
        take = (update(Upload)
                .where(Upload.id == upload_id, Upload.status == UploadStatus.USED)
                .values(status=UploadStatus.DELETED))
        if _take_and_delete(db, storage, take, key):
            deleted += 1
            log.info("transcription %s: media of upload %s deleted (its job never released "
                     "it)", transcription_id, upload_id)
    return deleted


def _sweep_unused_uploads(db: Database, storage: MediaStorage, now: datetime) -> int:
    """Expire pending uploads whose URL lapsed, and delete the files of uploads no
    transcription used within VOXHOOK_UNUSED_UPLOAD_HOURS (a transcription claiming one
    meanwhile wins: the claim and the sweep take the row with the same kind of UPDATE)."""
    with db.session() as session:
        session.execute(
            update(Upload)
            .where(Upload.status == UploadStatus.PENDING, Upload.url_expires_at <= now)
            .values(status=UploadStatus.EXPIRED)
            .execution_options(synchronize_session=False))
        stale = session.execute(
            select(Upload.id, Upload.storage_key)
            .where(Upload.status == UploadStatus.UPLOADED, Upload.delete_after <= now)
            .limit(BATCH)).all()
    deleted = 0
    for upload_id, key in stale:
        take = (update(Upload)
                .where(Upload.id == upload_id, Upload.status == UploadStatus.UPLOADED)
                .values(status=UploadStatus.DELETED))
        if _take_and_delete(db, storage, take, key):
            deleted += 1
            log.info("upload %s deleted: unused for too long", upload_id)
    return deleted


def sweeps_here(settings: Settings) -> bool:
    """Whether this machine's processes may sweep: they hold the media (a bucket, or the data
    directory the API writes to). A worker that reaches the API through
    ``VOXHOOK_INTERNAL_API_URL`` is on another machine: deleting from its own empty data
    directory would clear the records while the API's copy stayed, so it leaves sweeping to
    the API."""
    return settings.s3.enabled or not settings.internal_api_url


class SweepSchedule:
    """Sweeps in a background thread, at most every ``sweep_interval_s``, when poked.

    The API pokes it after requests (it has no loop of its own, and gunicorn may fork after
    the app is built); the worker pokes it from its heartbeat. A sweep never delays or fails
    the caller: errors are logged and the next poke tries again.
    """

    def __init__(self, settings: Settings, db: Database, storage: MediaStorage) -> None:
        self.settings, self.db, self.storage = settings, db, storage
        self.interval_s = settings.media_limits.sweep_interval_s
        self._next = 0.0
        self._lock = threading.Lock()

    def poke(self) -> threading.Thread | None:
        """Start a sweep if one is due and none is running; returns its thread."""
        with self._lock:
            now = time.monotonic()
            if self.interval_s <= 0 or now < self._next:
                return None
            self._next = now + self.interval_s
        thread = threading.Thread(target=self._sweep, name="voxhook-media-sweep", daemon=True)
        thread.start()
        return thread

    def _sweep(self) -> None:
        try:
            sweep_media(self.settings, self.db, self.storage)
        except Exception:  # the database briefly away: the next poke tries again
            log.exception("media sweep failed; trying again in %.0f s", self.interval_s)
