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

from typing import TYPE_CHECKING

from app.media.storage.base import (
    CHUNK_BYTES,
    MediaStorage,
    ObjectMissing,
    ObjectTooLarge,
    StorageError,
    StoredObject,
    check_key,
)
from app.media.storage.local import LocalStorage

if TYPE_CHECKING:
    from app.config import Settings

__all__ = ["CHUNK_BYTES", "LocalStorage", "MediaStorage", "ObjectMissing", "ObjectTooLarge",
           "StorageError", "StoredObject", "check_key", "storage_from_settings"]


def storage_from_settings(settings: Settings) -> MediaStorage:
    """The bucket when one is configured, else the data directory's ``media/store``."""
    if settings.s3.enabled:
        from app.media.storage.s3 import S3Storage  # boto3 only where a bucket is configured

        return S3Storage(settings.s3)
    return LocalStorage(settings.data_dir / "media" / "store")
