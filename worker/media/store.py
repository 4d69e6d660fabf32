"""A job's media: bring it onto this machine, and keep or delete it when the job ends.

A URL is downloaded by :mod:`worker.media.fetch`. An uploaded file is read where it is stored: in
place when this worker shares the API's data directory, from the bucket when media lives in
S3, and otherwise through the API's signed internal download URL (a worker on another
machine). The pipeline sees a local path either way.

When the job ends the media is deleted, unless the operator configured a retention time
(``VOXHOOK_MEDIA_RETENTION_HOURS``): then a downloaded file is moved into storage too, and
the transcription records what to delete and when (:mod:`app.media.sweep` does it). A worker
on another machine cannot delete an upload kept in the API's data directory, so it records
"delete now" and the API's sweep deletes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from app.config import Settings
from app.media.netguard import Allowlist
from app.media.storage import MediaStorage, ObjectMissing, StorageError, storage_from_settings
from app.media.uploads import internal_download_url
from worker.errors import UploadMissing
from worker.media.fetch import FetchPolicy, download

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaRef:
    """Where a job's media comes from: a URL, or an upload's stored object."""

    transcription_id: str
    url: str | None = None
    upload_id: str | None = None
    upload_key: str | None = None

    @property
    def is_upload(self) -> bool:
        return self.upload_id is not None


@dataclass(frozen=True)
class Kept:
    """Media kept after its job: the storage key, and when it is to be deleted."""

    key: str
    delete_after: datetime


def fetched_key(transcription_id: str) -> str:
    """The storage key a downloaded file is kept under when retention is configured."""
    return f"fetched/{transcription_id}"


class MediaStore:
    """Obtains and releases media for the jobs of one worker process."""

    def __init__(self, settings: Settings, policy: FetchPolicy, storage: MediaStorage) -> None:
        self.settings = settings
        self.policy = policy
        self.storage = storage

    @classmethod
    def from_settings(cls, settings: Settings,
                      storage: MediaStorage | None = None) -> MediaStore:
        return cls(settings, FetchPolicy.from_settings(settings),
                   storage or storage_from_settings(settings))

    def obtain(self, ref: MediaRef, work_dir: Path) -> Path:
        """A local path to the job's media (inside ``work_dir`` unless it is read in place)."""
        destination = work_dir / "source"
        if not ref.is_upload:
            assert ref.url is not None
            return download(ref.url, destination, self.policy).path
        assert ref.upload_id is not None and ref.upload_key is not None
        in_place = self.storage.local_path(ref.upload_key)
        if in_place is not None:
            return in_place
        if self.settings.s3.enabled:
            try:
                return self.storage.download_to(ref.upload_key, destination)
            except ObjectMissing:
                raise _upload_gone(ref.upload_id) from None
            except StorageError as exc:
                raise UploadMissing(f"The uploaded file could not be read from the bucket "
                                    f"({exc}); the operator should check the S3 settings.") \
                    from exc
        return self._download_from_api(ref.upload_id, destination)

    def release(self, ref: MediaRef, work_dir: Path, now: datetime,
                keep: bool = True) -> Kept | None:
        """Delete the job's media, or keep it for the retention time; says what was kept.

        ``keep=False`` deletes whatever the retention time (the transcription is gone).
        """
        retention = self.settings.media_limits.retention_s if keep else 0
        if ref.is_upload:
            assert ref.upload_key is not None
            held_here = self.settings.s3.enabled or self.storage.exists(ref.upload_key)
            if retention > 0 or not held_here:
                # Kept, or on the API's machine where this worker cannot delete it: the
                # sweep there deletes it when the time is up (now, without retention).
                return Kept(ref.upload_key, now + timedelta(seconds=retention))
            self.storage.delete(ref.upload_key)
            log.info("transcription %s: uploaded media deleted", ref.transcription_id)
            return None
        source = work_dir / "source"
        if retention > 0 and source.is_file():
            key = fetched_key(ref.transcription_id)
            self.storage.save_file(key, source)
            return Kept(key, now + timedelta(seconds=retention))
        return None  # the work folder, and the download in it, is removed by the caller

    def _download_from_api(self, upload_id: str, destination: Path) -> Path:
        base = self.settings.internal_api_url or self.settings.public_url
        if not base:
            raise UploadMissing(
                "The uploaded file is not in this worker's data directory, and "
                "VOXHOOK_INTERNAL_API_URL is not set: the operator must set it (or share the "
                "data directory, or configure an S3 bucket) so workers can read uploads.")
        url = internal_download_url(self.settings, base, upload_id)
        # The internal API is the operator's own host: trusted although it is private.
        host = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        allowlist = Allowlist.parse([*self.settings.fetch_allowlist, host])
        resolver = replace(self.policy.resolver, allowlist=allowlist)
        try:
            return download(url, destination, replace(self.policy, resolver=resolver)).path
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status in (404, 410):
                raise _upload_gone(upload_id) from exc
            raise


def _upload_gone(upload_id: str) -> UploadMissing:
    return UploadMissing(f"The uploaded file {upload_id} is no longer stored (it expired or "
                         "was deleted): upload it again and create a new transcription.")
