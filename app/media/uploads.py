"""Direct uploads (SPEC.md section 5): files sent to the service instead of a URL.

Two ways in, one result (an ``uploaded`` :class:`~app.store.models.Upload` whose bytes are in media
storage):

- two steps: :meth:`UploadService.create` answers a signed upload URL; the client PUTs the raw
  bytes there (:meth:`UploadService.receive`, no API key: the signature is the permission);
- one request: the file arrives with the transcription request itself (multipart or a raw
  body; :meth:`UploadService.store_direct` / :meth:`UploadService.store_direct_file`).

A transcription then takes the upload with :func:`claim_upload`, atomically and only once.
Bytes are always streamed to storage in bounded chunks, never held whole in memory. Workers
that do not share the data directory read the file through :func:`internal_download_url`.

No Flask here: views hand over streams and the request's base URL, and the worker imports
this module for :func:`internal_download_url`.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, urlencode

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import (
    DownloadUrlExpired,
    DownloadUrlInvalid,
    FileTooLarge,
    NotFound,
    UploadAlreadyReceived,
    UploadGone,
    UploadUrlExpired,
    UploadUrlInvalid,
    ValidationFailed,
)
from app.media import signing
from app.media.storage import MediaStorage, ObjectTooLarge, StoredObject
from app.store.db import Database
from app.store.models import Upload, UploadStatus, as_utc, new_id, utcnow

if TYPE_CHECKING:
    from app.billing.keys import Caller

log = logging.getLogger(__name__)

#: How long an internal download URL works. A worker builds one just before it downloads
#: (only the start of the request is checked), so a few minutes are plenty.
DOWNLOAD_URL_TTL_S = 900


@dataclass(frozen=True)
class NewUpload:
    """An upload waiting for its file, with where and until when to send it."""

    upload: Upload
    upload_url: str
    max_bytes: int


def upload_path(upload_id: str) -> str:
    """The path of an upload's PUT URL (``/api/v1/uploads/{id}/content``)."""
    return f"/api/v1/uploads/{quote(upload_id)}/content"


def media_path(upload_id: str) -> str:
    """The path of an upload's internal download URL (``/internal/media/{id}``)."""
    return f"/internal/media/{quote(upload_id)}"


def _signed_url(key: bytes, purpose: str, base_url: str, path: str, object_id: str,
                expires: int) -> str:
    query = urlencode({"expires": expires,
                       "signature": signing.sign(key, purpose, object_id, expires)})
    return f"{base_url.rstrip('/')}{path}?{query}"


def internal_download_url(settings: Settings, base_url: str, upload_id: str, *,
                          now: float | None = None, ttl_s: int = DOWNLOAD_URL_TTL_S) -> str:
    """A URL from which a worker on another machine downloads an upload's file.

    ``base_url`` is the API as workers reach it (``settings.internal_api_url``, else
    ``settings.public_url``); the URL is signed with the key API and workers share
    (:func:`app.media.signing.signing_key`), for the ``download`` purpose only, and expires after
    ``ttl_s`` seconds from ``now`` (Unix time; default: the clock). A pure function but for
    reading the key file when ``VOXHOOK_SECRET_KEY`` is not set.
    """
    expires = math.ceil((time.time() if now is None else now) + ttl_s)
    return _signed_url(signing.signing_key(settings), signing.DOWNLOAD, base_url,
                       media_path(upload_id), upload_id, expires)


def claim_upload(session: Session, account_id: str, upload_id: str,
                 transcription_id: str) -> None:
    """Give the upload to a transcription, inside the transcription's own transaction.

    One conditional UPDATE (``… WHERE status = 'uploaded' AND account_id = …``) takes it, so
    of two transcriptions racing for one upload exactly one gets it, whatever the database.
    Otherwise a 422 naming ``upload_id`` says why and what to do; another account's upload is
    answered like an unknown one.
    """
    taken = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.account_id == account_id,
               Upload.status == UploadStatus.UPLOADED)
        .values(status=UploadStatus.USED, transcription_id=transcription_id)
        .execution_options(synchronize_session=False))
    if taken.rowcount == 1:
        return
    upload = session.get(Upload, upload_id)
    message = _why_not_claimable(upload if upload and upload.account_id == account_id
                                 else None, upload_id)
    raise ValidationFailed(f"upload_id: {message}", fields={"upload_id": [message]})


def release_upload(session: Session, upload_id: str, transcription_id: str) -> None:
    """Undo :func:`claim_upload` for a transcription that could not even be queued, so that
    the client's retry can use the same upload (its ``delete_after`` still applies)."""
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.transcription_id == transcription_id,
               Upload.status == UploadStatus.USED)
        .values(status=UploadStatus.UPLOADED, transcription_id=None)
        .execution_options(synchronize_session=False))


def _why_not_claimable(upload: Upload | None, upload_id: str) -> str:
    if upload is None:
        return (f"No upload '{upload_id}' for this API key's account: create one with "
                "POST /api/v1/uploads and PUT the file to its upload_url first.")
    status = upload.status
    if status == UploadStatus.PENDING:
        if as_utc(upload.url_expires_at) <= utcnow():
            return (f"Upload '{upload_id}' never received its file and its upload URL has "
                    "expired: create a new upload and PUT the file to its upload_url.")
        return (f"Upload '{upload_id}' has not received its file yet: PUT the file to its "
                "upload_url first, then create the transcription.")
    if status == UploadStatus.USED:
        return (f"Upload '{upload_id}' was already used by transcription "
                f"'{upload.transcription_id}'; an upload serves one transcription. Create a "
                "new upload for a new transcription.")
    return (f"Upload '{upload_id}' is {status}: its file is no longer stored. Upload the file "
            "again with a new upload.")



class UploadService:
    """Creates uploads, receives and stores their bytes, and serves them to workers."""

    def __init__(self, db: Database, storage: MediaStorage, settings: Settings) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.limits = settings.uploads
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        """The signing key, read on first use (a sweep never needs it)."""
        if self._key is None:
            self._key = signing.signing_key(self.settings)
        return self._key

    # ------------------------------------------------------------------ two-step uploads

    def create(self, caller: Caller, base_url: str, filename: str | None = None,
               content_type: str | None = None) -> NewUpload:
        """A pending upload and its signed URL; ``base_url`` is the public URL when one is
        configured, else the request's own host URL (what the view passes in)."""
        now = utcnow()
        # Rounded up: the URL works for at least url_ttl_s seconds, never a moment less.
        expires = math.ceil(now.timestamp() + self.limits.url_ttl_s)
        upload = Upload(
            id=new_id("up"), account_id=caller.account_id, api_key_id=caller.key_id,
            status=UploadStatus.PENDING, filename=filename, content_type=content_type,
            created_at=now, url_expires_at=datetime.fromtimestamp(expires, UTC))
        with self.db.session() as session:
            session.add(upload)
        url = _signed_url(self.key, signing.UPLOAD, self.settings.public_url or base_url,
                          upload_path(upload.id), upload.id, expires)
        return NewUpload(upload=upload, upload_url=url, max_bytes=self.limits.max_bytes)

    def get(self, caller: Caller, upload_id: str) -> Upload:
        """The caller's upload; another account's is answered as if it did not exist."""
        with self.db.session() as session:
            upload = session.get(Upload, upload_id)
            if upload is None or upload.account_id != caller.account_id:
                raise NotFound(f"No upload '{upload_id}' for this API key's account.")
            return upload

    def receive(self, upload_id: str, expires: str, signature: str, stream: BinaryIO,
                content_length: int | None, content_type: str | None = None) -> Upload:
        """Store the bytes PUT to a signed upload URL, once.

        Refused before a byte is read: a forged or expired URL (403), an upload that has its
        file already (409), a declared Content-Length over the limit (413). A body that
        passes the limit while streaming is cut off and nothing is kept (413).
        """
        self._check_signature(signing.UPLOAD, upload_id, expires, signature,
                              UploadUrlInvalid, UploadUrlExpired, "upload")
        with self.db.session() as session:
            upload = session.get(Upload, upload_id)
        if upload is None:
            raise UploadGone(f"Upload '{upload_id}' no longer exists: create a new upload.")
        self._check_receivable(upload)
        stored = self._store(upload_id, stream, content_length)
        with self.db.session() as session:
            now = utcnow()
            received = session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.status == UploadStatus.PENDING)
                .values(status=UploadStatus.UPLOADED, storage_key=stored.key,
                        size_bytes=stored.size_bytes, sha256=stored.sha256, uploaded_at=now,
                        delete_after=now + timedelta(seconds=self.limits.unused_ttl_s),
                        content_type=content_type or upload.content_type)
                .execution_options(synchronize_session=False))
            if received.rowcount != 1:  # a concurrent PUT of the same URL got there first
                self.storage.delete(stored.key)
                raise UploadAlreadyReceived(self._already_message(upload_id))
            upload = session.get(Upload, upload_id, populate_existing=True)
        log.info("upload %s received: %d bytes", upload_id, stored.size_bytes)
        return upload

    def _check_receivable(self, upload: Upload) -> None:
        if upload.status in (UploadStatus.UPLOADED, UploadStatus.USED):
            raise UploadAlreadyReceived(self._already_message(upload.id))
        if upload.status != UploadStatus.PENDING:
            raise UploadGone(f"Upload '{upload.id}' is {upload.status}: create a new upload.")

    @staticmethod
    def _already_message(upload_id: str) -> str:
        return (f"Upload '{upload_id}' has its file already (an upload takes one file; GET "
                f"/api/v1/uploads/{upload_id} shows its size and sha256). To send another "
                "file, create a new upload.")

    # ------------------------------------------------------------------ one-request uploads

    def store_direct(self, caller: Caller, stream: BinaryIO, content_length: int | None,
                     filename: str | None = None, content_type: str | None = None) -> Upload:
        """Store a file that came as a request's raw body; an ``uploaded`` upload of the
        caller's, ready for :func:`claim_upload`."""
        upload_id = new_id("up")
        stored = self._store(upload_id, stream, content_length)
        return self._record_direct(caller, upload_id, stored, filename, content_type)

    def store_direct_file(self, caller: Caller, path: Path, filename: str | None = None,
                          content_type: str | None = None) -> Upload:
        """Move a file already spooled to local disk (a multipart part) into storage."""
        size = path.stat().st_size
        if size > self.limits.max_bytes:
            path.unlink(missing_ok=True)
            raise FileTooLarge(self.limits.max_bytes)
        if size == 0:
            path.unlink(missing_ok=True)
            raise _empty_file()
        upload_id = new_id("up")
        stored = self.storage.save_file(_new_key(upload_id), path)
        return self._record_direct(caller, upload_id, stored, filename, content_type)

    def _record_direct(self, caller: Caller, upload_id: str, stored: StoredObject,
                       filename: str | None, content_type: str | None) -> Upload:
        now = utcnow()
        upload = Upload(
            id=upload_id, account_id=caller.account_id, api_key_id=caller.key_id,
            status=UploadStatus.UPLOADED, filename=filename, content_type=content_type,
            size_bytes=stored.size_bytes, sha256=stored.sha256, storage_key=stored.key,
            # It never had a URL: its "URL" expired the moment it was made.
            created_at=now, url_expires_at=now, uploaded_at=now,
            delete_after=now + timedelta(seconds=self.limits.unused_ttl_s))
        try:
            with self.db.session() as session:
                session.add(upload)
        except BaseException:
            self.storage.delete(stored.key)
            raise
        return upload

    def discard(self, upload_id: str) -> None:
        """Delete an upload nobody will use (its one-request transcription was refused or
        was an idempotent replay); a used upload is left alone."""
        with self.db.session() as session:
            upload = session.get(Upload, upload_id)
            if upload is None or upload.status != UploadStatus.UPLOADED:
                return
            upload.status = UploadStatus.DELETED
            key = upload.storage_key
        if key:
            self.storage.delete(key)

    # ------------------------------------------------------------------ shared

    def _store(self, upload_id: str, stream: BinaryIO, content_length: int | None
               ) -> StoredObject:
        """Stream into storage under a fresh key, within the size limit; never empty."""
        limit = self.limits.max_bytes
        if content_length is not None and content_length > limit:
            raise FileTooLarge(limit)
        key = _new_key(upload_id)
        try:
            stored = self.storage.save_stream(key, stream, limit)
        except ObjectTooLarge:
            raise FileTooLarge(limit) from None
        if stored.size_bytes == 0:
            self.storage.delete(key)
            raise _empty_file()
        return stored

    def _check_signature(self, purpose: str, object_id: str, expires: str, signature: str,
                         invalid: type[UploadUrlInvalid] | type[DownloadUrlInvalid],
                         expired: type[UploadUrlExpired] | type[DownloadUrlExpired],
                         what: str) -> None:
        try:
            signing.verify(self.key, purpose, object_id, expires, signature)
        except signing.SignatureExpired:
            when = datetime.fromtimestamp(int(expires), UTC).isoformat(timespec="seconds")
            advice = ("create a new upload with POST /api/v1/uploads and send the file to "
                      "its upload_url" if what == "upload" else "build a new URL")
            raise expired(f"This {what} URL expired at {when}: {advice}.") from None
        except signing.SignatureError:
            advice = ("use the upload_url exactly as POST /api/v1/uploads answered it"
                      if what == "upload" else "check that API and workers share "
                      "VOXHOOK_SECRET_KEY")
            raise invalid(f"This {what} URL is not valid (altered, or signed for another "
                          f"object or with another key): {advice}.") from None

    # ------------------------------------------------------------------ workers

    def open_download(self, upload_id: str, expires: str, signature: str) -> Upload:
        """The upload a signed internal download URL names, if its file is still stored."""
        self._check_signature(signing.DOWNLOAD, upload_id, expires, signature,
                              DownloadUrlInvalid, DownloadUrlExpired, "download")
        with self.db.session() as session:
            upload = session.get(Upload, upload_id)
        if upload is None:
            raise NotFound(f"No upload '{upload_id}'.")
        if (upload.status not in (UploadStatus.UPLOADED, UploadStatus.USED)
                or not upload.storage_key or not self.storage.exists(upload.storage_key)):
            raise UploadGone(f"The file of upload '{upload_id}' is no longer stored.")
        return upload


def _new_key(upload_id: str) -> str:
    """A storage key of its own for each attempt (``uploads/up_…-…``): two PUTs racing to
    one URL never write the same object, and the loser deletes only its own."""
    return f"uploads/{upload_id}-{secrets.token_hex(4)}"


def _empty_file() -> ValidationFailed:
    message = "The file is empty (0 bytes): send the audio or video file's contents."
    return ValidationFailed(f"file: {message}", fields={"file": [message]})
