"""``GET /api/v1/transcriptions``: what a page asks for and what it holds (newest first,
by ``created_at`` then id, with a cursor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.errors import (
    ValidationFailed,
)
from app.store.models import (
    Transcription,
)


@dataclass(frozen=True)
class ListQuery:
    """What ``GET /api/v1/transcriptions`` asks for (already validated by its schema).

    ``created_after`` is inclusive and ``created_before`` exclusive, both timezone-aware.
    """

    limit: int = 20
    starting_after: str | None = None
    statuses: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_result: bool = True


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first; ``has_more`` says whether older ones follow."""

    items: list[Transcription]
    has_more: bool

    @property
    def next_starting_after(self) -> str | None:
        return self.items[-1].id if self.has_more else None


def unknown_cursor(transcription_id: str) -> ValidationFailed:
    message = (f"No transcription '{transcription_id}' for this API key's account: pass the "
               "next_starting_after of the previous page (or leave starting_after out to "
               "start from the newest). If that transcription was deleted meanwhile, start "
               "again from the first page.")
    return ValidationFailed(f"starting_after: {message}", fields={"starting_after": [message]})
