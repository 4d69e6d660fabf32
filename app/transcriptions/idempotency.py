"""``Idempotency-Key``: a repeated creation answers what the first one answered.

The key and a fingerprint of the request are kept with the first answer
(:class:`~app.store.models.IdempotencyRecord`); the same key with another request is a 422.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import (
    ValidationFailed,
)
from app.store.models import (
    IdempotencyRecord,
)


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
        """The header's key, stripped; a 422 when it is empty, too long or not printable
        ASCII (checked before a one-request upload stores its file)."""
        if key is None:
            return None
        key = key.strip()
        if not key or len(key) > 255 or not all(" " <= char <= "~" for char in key):
            message = ("Must be 1 to 255 printable ASCII characters (a UUID is a good "
                       "choice).")
            raise ValidationFailed(f"Idempotency-Key: {message}",
                                   fields={"Idempotency-Key": [message]})
        return key


def find_record(session: Session, account_id: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key))
