"""A job's media on the worker: read in place or fetched, then deleted or kept, and swept.

Real storage folders and a real database (SQLite and PostgreSQL); the URL fetches go to
loopback listeners.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from app.billing.keys import create_key
from app.config import MediaLimits, Settings
from app.media.netguard import Allowlist, Resolver
from app.media.storage import LocalStorage
from app.media.sweep import ORPHAN_GRACE, sweep_media
from app.store.db import Database
from app.store.models import (
    Transcription,
    TranscriptionStatus,
    Upload,
    UploadStatus,
    new_id,
    utcnow,
)
from tests.support.listeners import Listener, respond
from tests.support.paths import FIXTURES
from worker.errors import UploadMissing
from worker.media.fetch import FetchPolicy
from worker.media.store import MediaRef, MediaStore, fetched_key

FIXTURES = FIXTURES
FLAC = (FIXTURES / "jfk.flac").read_bytes()
HOUR = 3600


def media_store(settings: Settings, retention_s: int = 0) -> tuple[MediaStore, LocalStorage]:
    settings = settings.with_overrides(media_limits=MediaLimits(retention_s=retention_s))
    storage = LocalStorage(settings.data_dir / "media" / "store")
    policy = FetchPolicy(resolver=Resolver(Allowlist.parse(["127.0.0.1"])))
    return MediaStore(settings, policy, storage), storage


def test_upload_is_read_in_place_and_deleted_when_the_job_ends(settings: Settings,
                                                               tmp_path: Path) -> None:
    """A worker sharing the data directory reads the upload where it is (no copy), and with
    no retention deletes it at job end."""
    store, storage = media_store(settings)
    storage.save_stream("uploads/up_1", io.BytesIO(FLAC), max_bytes=10**7)
    ref = MediaRef("tr_1", upload_id="up_1", upload_key="uploads/up_1")
    path = store.obtain(ref, tmp_path)
    assert path == storage.local_path("uploads/up_1")
    assert path.read_bytes() == FLAC
    assert store.release(ref, tmp_path, utcnow()) is None
    assert not storage.exists("uploads/up_1")


def test_upload_is_kept_for_the_retention_time(settings: Settings, tmp_path: Path) -> None:
    """With a retention time the upload stays, and release says until when."""
    store, storage = media_store(settings, retention_s=2 * HOUR)
    storage.save_stream("uploads/up_2", io.BytesIO(FLAC), max_bytes=10**7)
    ref = MediaRef("tr_2", upload_id="up_2", upload_key="uploads/up_2")
    now = utcnow()
    kept = store.release(ref, tmp_path, now)
    assert kept is not None
    assert kept.key == "uploads/up_2" and kept.delete_after == now + timedelta(hours=2)
    assert storage.exists("uploads/up_2")


def test_downloaded_file_is_moved_into_storage_for_the_retention_time(
        settings: Settings, tmp_path: Path) -> None:
    """A fetched file is kept under fetched/<id> when retention is configured; without it,
    release keeps nothing (the caller removes the work folder)."""
    with Listener(behaviour=respond(FLAC)) as server:
        for retention, expect_kept in ((HOUR, True), (0, False)):
            store, storage = media_store(settings, retention_s=retention)
            work = tmp_path / f"work-{retention}"
            work.mkdir()
            ref = MediaRef(f"tr_{retention}", url=server.url("/talk.flac"))
            assert store.obtain(ref, work).read_bytes() == FLAC
            kept = store.release(ref, work, utcnow())
            assert (kept is not None) == expect_kept
            assert storage.exists(fetched_key(ref.transcription_id)) == expect_kept
    assert server.connections == 2


def test_upload_elsewhere_without_internal_api_url_says_what_to_set(settings: Settings,
                                                                    tmp_path: Path) -> None:
    """A worker that does not have the file and has no way to ask the API for it fails the
    job with what the operator must configure."""
    store, _ = media_store(settings.with_overrides(internal_api_url=None, public_url=None))
    ref = MediaRef("tr_3", upload_id="up_3", upload_key="uploads/up_3")
    with pytest.raises(UploadMissing, match="VOXHOOK_INTERNAL_API_URL"):
        store.obtain(ref, tmp_path)


# --------------------------------------------------------------------------- the sweep


def _rows(database: Database, *, upload_status: UploadStatus, status: TranscriptionStatus,
          ended_ago: timedelta | None, media_delete_after_in: timedelta | None,
          key: str) -> tuple[str, str]:
    """An upload and the transcription that used it; returns their ids."""
    now = utcnow()
    with database.session() as session:
        created = create_key(session, "sweep")
        upload = Upload(id=new_id("up"), account_id=created.key.account_id,
                        api_key_id=created.key.id, status=upload_status, storage_key=key,
                        url_expires_at=now, uploaded_at=now, size_bytes=len(FLAC))
        session.add(upload)
        session.flush()
        transcription = Transcription(
            id=new_id("tr"), account_id=created.key.account_id, api_key_id=created.key.id,
            surface="v1", status=status, source="upload", upload_id=upload.id,
            pipeline_code="tiny", created_at=now,
            completed_at=now - ended_ago if ended_ago is not None else None,
            media_key=key if media_delete_after_in is not None else None,
            media_delete_after=(now + media_delete_after_in
                                if media_delete_after_in is not None else None))
        session.add(transcription)
        upload.transcription_id = transcription.id
        return upload.id, transcription.id


def test_sweep_deletes_media_past_retention_and_orphans_but_keeps_the_rest(
        settings: Settings, database: Database) -> None:
    """Past its retention: deleted and the row cleared. Still within it: kept. A used upload
    whose job ended long ago without releasing it: deleted. One whose job just ended or is
    still running: kept. The transcripts themselves are untouched."""
    storage = LocalStorage(settings.data_dir / "media" / "store")
    cases = {
        "past_retention": dict(upload_status=UploadStatus.USED,
                               status=TranscriptionStatus.COMPLETED,
                               ended_ago=timedelta(hours=5),
                               media_delete_after_in=timedelta(seconds=-1)),
        "within_retention": dict(upload_status=UploadStatus.USED,
                                 status=TranscriptionStatus.COMPLETED,
                                 ended_ago=timedelta(hours=5),
                                 media_delete_after_in=timedelta(hours=1)),
        "orphaned": dict(upload_status=UploadStatus.USED, status=TranscriptionStatus.FAILED,
                         ended_ago=ORPHAN_GRACE + timedelta(minutes=1),
                         media_delete_after_in=None),
        "just_ended": dict(upload_status=UploadStatus.USED,
                           status=TranscriptionStatus.COMPLETED,
                           ended_ago=timedelta(minutes=1), media_delete_after_in=None),
        "running": dict(upload_status=UploadStatus.USED,
                        status=TranscriptionStatus.PROCESSING, ended_ago=None,
                        media_delete_after_in=None),
    }
    ids = {}
    for name, case in cases.items():
        key = f"uploads/{name}"
        storage.save_stream(key, io.BytesIO(FLAC), max_bytes=10**7)
        ids[name] = _rows(database, key=key, **case)  # type: ignore[arg-type]
    report = sweep_media(settings, database, storage)
    assert (report.retained, report.orphaned) == (1, 1)
    gone = {"past_retention", "orphaned"}
    for name in cases:
        assert storage.exists(f"uploads/{name}") == (name not in gone), name
    with database.session() as session:
        for name, (upload_id, transcription_id) in ids.items():
            upload = session.get(Upload, upload_id)
            transcription = session.get(Transcription, transcription_id)
            assert upload is not None and transcription is not None
            assert (upload.status == UploadStatus.DELETED) == (name in gone), name
            assert transcription.status == cases[name]["status"]
        past = session.get(Transcription, ids["past_retention"][1])
        assert past is not None and past.media_key is None and past.media_delete_after is None
    assert sweep_media(settings, database, storage).total == 0  # nothing twice


def test_worker_elsewhere_leaves_the_apis_copy_to_the_apis_sweep(settings: Settings,
                                                                  tmp_path: Path) -> None:
    """A worker that does not hold the upload (it fetched it from the API) cannot delete it:
    release records "delete now" for the API's sweep instead of dropping it silently."""
    store, storage = media_store(settings)
    ref = MediaRef("tr_4", upload_id="up_4", upload_key="uploads/up_4")
    now = utcnow()
    kept = store.release(ref, tmp_path, now)
    assert kept is not None and kept.key == "uploads/up_4" and kept.delete_after == now
    assert not storage.exists("uploads/up_4")
