"""The storage contract every backend keeps: keys, stored objects, errors, :class:`MediaStorage`.

Objects are named by keys such as ``uploads/up_…`` (no leading slash, no ``..``).

Hierarchy::

    StorageError
    ├── ObjectTooLarge     the stream passed the size limit (nothing is kept)
    └── ObjectMissing      no object under that key
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

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
