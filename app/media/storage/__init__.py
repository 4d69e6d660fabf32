"""Where media files live: the data directory by default, an S3-compatible bucket if configured.

The API streams uploads into a :class:`MediaStorage`; workers read them back out (directly
when they share the data directory, otherwise through a signed internal download URL or the
bucket) and delete them when the job ends, unless a retention time is configured. Objects are
named by keys such as ``uploads/up_…`` (no leading slash, no ``..``).

Hierarchy::

    StorageError
    ├── ObjectTooLarge     the stream passed the size limit (nothing is kept)
    └── ObjectMissing      no object under that key
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from app.config import Settings

#: Bytes read from an incoming stream at a time: bounded memory, whatever the file's size.
CHUNK_BYTES = 1024 * 1024

_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")


class StorageError(Exception):
    """A media object could not be stored or read."""


class ObjectTooLarge(StorageError):
    """The stream was longer than the limit; what was written has been removed."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"more than {max_bytes} bytes")
        self.max_bytes = max_bytes


class ObjectMissing(StorageError):
    """No object under the key (never stored, or already deleted)."""


@dataclass(frozen=True)
class StoredObject:
    """What was stored: its size and SHA-256, for the client to check against its own."""

    key: str
    size_bytes: int
    sha256: str


def check_key(key: str) -> str:
    """``key`` if it is a safe relative object name; ValueError otherwise."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


class MediaStorage(Protocol):
    """What the API and the workers need of a place to keep media."""

    def save_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        """Copy ``stream`` to ``key`` chunk by chunk; :class:`ObjectTooLarge` past the cap."""

    def save_file(self, key: str, path: Path) -> StoredObject:
        """Move (or copy) the local file ``path`` into storage under ``key``."""

    def local_path(self, key: str) -> Path | None:
        """The object as a file on this machine, when storage is a local folder."""

    def download_to(self, key: str, destination: Path) -> Path:
        """Copy the object into ``destination``; :class:`ObjectMissing` when absent."""

    def open_read(self, key: str) -> BinaryIO:
        """A readable stream of the object; :class:`ObjectMissing` when absent."""

    def delete(self, key: str) -> bool:
        """Remove the object; whether there was one."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""


class LocalStorage:
    """Objects as files under ``root`` (``<data dir>/media/store`` by default).

    Writes go to a temporary file in the same folder and are renamed into place, so a reader
    never sees half a file and an aborted upload leaves nothing behind.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def save_stream(self, key: str, stream: BinaryIO, max_bytes: int) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle, temporary = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as sink:
                while chunk := stream.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    digest.update(chunk)
                    sink.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size_bytes=size, sha256=digest.hexdigest())

    def save_file(self, key: str, path: Path) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
        size = path.stat().st_size
        shutil.move(path, target)
        return StoredObject(key=key, size_bytes=size, sha256=digest.hexdigest())

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def download_to(self, key: str, destination: Path) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise ObjectMissing(key)
        shutil.copyfile(source, destination)
        return destination

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def storage_from_settings(settings: Settings) -> MediaStorage:
    """The bucket when one is configured, else the data directory's ``media/store``."""
    if settings.s3.enabled:
        from app.media.storage.s3 import S3Storage  # boto3 only where a bucket is configured

        return S3Storage(settings.s3)
    return LocalStorage(settings.data_dir / "media" / "store")
