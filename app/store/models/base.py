"""What every table shares: the declarative base, ids, UTC times, the default account."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
)
from sqlalchemy.orm import DeclarativeBase

#: The account every fresh installation has, so a newcomer can create a key at once.
DEFAULT_ACCOUNT_ID = "acct_default"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what every timestamp column stores)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time, timezone-aware: SQLite gives back naive datetimes, all of them UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``tr_3f9k…`` (prefix says what it names)."""
    return f"{prefix}_{secrets.token_hex(12)}"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}
