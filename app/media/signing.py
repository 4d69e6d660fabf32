"""Signed URLs: a URL that carries its own permission, like a presigned object-store URL.

An upload URL lets whoever holds it ``PUT`` one file, without an API key (tools such as n8n
or a browser can send the bytes directly); an internal download URL lets a worker on
another machine read an uploaded file from the API. Each is an HMAC-SHA256 over what it
allows (a purpose, an object id and an expiry time), so it cannot be stretched to another
object, another purpose or a later time.

The key is ``VOXHOOK_SECRET_KEY`` when set. Otherwise a random key is created once in
``<data dir>/secret_key`` and shared by every process that shares the data directory (the
API's gunicorn processes, a worker on the same machine). Workers on other machines need the
same key, so a deployment across machines sets ``VOXHOOK_SECRET_KEY`` everywhere (the file's
contents work as its value).

Hierarchy::

    SignatureError
    ├── SignatureExpired   the signature is genuine, but its time has passed
    └── SignatureInvalid   not a signature of this purpose, object and expiry
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path

from app.config import Settings

#: The purposes a signature can be for; a signature of one is worthless for the other.
UPLOAD = "upload"
DOWNLOAD = "download"

#: The file under the data directory holding the generated key.
KEY_FILE = "secret_key"


class SignatureError(Exception):
    """A signed URL cannot be honoured."""


class SignatureExpired(SignatureError):
    """The URL was signed by us, but it expired; a new one must be asked for."""


class SignatureInvalid(SignatureError):
    """The signature does not match (tampered, truncated, or made for another object)."""


def signing_key(settings: Settings) -> bytes:
    """The key that signs URLs: ``settings.secret_key``, else the data directory's key file.

    The file is created at most once, atomically: the key is written to a temporary file that
    is then hard-linked into place, which fails if another process got there first; the
    loser reads the winner's file. So several gunicorn processes starting together agree on
    one key, and nobody ever reads a half-written file.
    """
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = settings.data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".secret_key-", dir=settings.data_dir)
    try:
        with os.fdopen(handle, "w") as sink:  # mkstemp creates it with mode 0600
            sink.write(secrets.token_urlsafe(48) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it (a new key is made) or set "
                           "VOXHOOK_SECRET_KEY")
    return key.encode("utf-8")


def sign(key: bytes, purpose: str, object_id: str, expires: int) -> str:
    """The signature (43 URL-safe characters) allowing ``purpose`` on ``object_id`` until
    the Unix time ``expires``."""
    message = f"{purpose}\n{object_id}\n{int(expires)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(key: bytes, purpose: str, object_id: str, expires: str | int, signature: str,
           now: float | None = None) -> int:
    """Check a signature from a URL; returns the expiry as an integer.

    The signature is checked before the expiry, so a forged URL is always
    :class:`SignatureInvalid` and only a genuine one can be :class:`SignatureExpired`.
    """
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        raise SignatureInvalid("expires is not a Unix time") from None
    expected = sign(key, purpose, object_id, expires_at)
    if not hmac.compare_digest(expected.encode("ascii"), str(signature).encode("utf-8")):
        raise SignatureInvalid("signature mismatch")
    if (time.time() if now is None else now) >= expires_at:
        raise SignatureExpired(f"expired at {expires_at}")
    return expires_at
