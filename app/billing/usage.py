"""Spend and audio per API key and per UTC day (``GET /api/v1/usage``).

Spend is the cost of the account's *completed* transcriptions (``cost_micro_usd``, fixed by
the worker once the audio's length is known); failed and cancelled ones cost nothing. A
transcription counts on the UTC day it completed. This holds with billing on or off: with
billing on, the same amounts are what the wallet's ledger charged.

The database does the grouping (one row per key and day, whatever the number of
transcriptions), and every figure stays an integer: micro-dollars, and milliseconds of
audio. So the keys' totals add up to the account's exactly, and so do the days'.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func, select
from sqlalchemy.orm import Session

from app.store.models import ApiKey, Transcription, TranscriptionStatus


@dataclass(frozen=True)
class Figures:
    """What was spent in some bucket: micro-dollars, milliseconds of audio, how many."""

    spend_micro_usd: int = 0
    audio_ms: int = 0
    transcriptions: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.spend_micro_usd + other.spend_micro_usd,
                       self.audio_ms + other.audio_ms,
                       self.transcriptions + other.transcriptions)


@dataclass
class KeyUsage:
    """One key's usage: its total and its days (only days with usage)."""

    key: ApiKey
    total: Figures = Figures()
    days: dict[date, Figures] = field(default_factory=dict)


@dataclass
class Usage:
    """An account's usage over ``start``..``end`` (UTC days, both included)."""

    start: date
    end: date
    total: Figures = Figures()
    days: dict[date, Figures] = field(default_factory=dict)
    keys: list[KeyUsage] = field(default_factory=list)


def account_usage(session: Session, account_id: str, start: date, end: date) -> Usage:
    """Spend and audio of ``account_id`` per key and per UTC day, ``start``..``end``."""
    day = _utc_day(session)
    since = datetime.combine(start, time(), tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    rows = session.execute(
        select(Transcription.api_key_id, day.label("day"), func.count(),
               func.sum(func.coalesce(Transcription.cost_micro_usd, 0)),
               func.sum(func.coalesce(cast(func.round(
                   Transcription.audio_duration_seconds * 1000), BigInteger), 0)))
        .where(Transcription.account_id == account_id,
               Transcription.status == TranscriptionStatus.COMPLETED,
               Transcription.completed_at >= since, Transcription.completed_at < until)
        .group_by(Transcription.api_key_id, day)).all()
    usage = Usage(start=start, end=end)
    per_key: dict[str, dict[date, Figures]] = defaultdict(dict)
    for key_id, day_text, count, spend, audio_ms in rows:
        figures = Figures(int(spend or 0), int(audio_ms or 0), int(count))
        per_key[key_id][_as_date(day_text)] = figures
    keys = {key.id: key for key in session.scalars(
        select(ApiKey).where(ApiKey.id.in_(per_key)).order_by(ApiKey.created_at, ApiKey.id))}
    for key_id, key in keys.items():
        entry = KeyUsage(key=key, days=dict(sorted(per_key[key_id].items())))
        for when, figures in entry.days.items():
            entry.total += figures
            usage.days[when] = usage.days.get(when, Figures()) + figures
        usage.total += entry.total
        usage.keys.append(entry)
    usage.days = dict(sorted(usage.days.items()))
    return usage


def _utc_day(session: Session) -> ColumnElement[Any]:
    """``completed_at``'s UTC day as 'YYYY-MM-DD', in the database's own dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Transcription.completed_at), "YYYY-MM-DD")
    if dialect == "sqlite":  # stored as UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'
        return func.strftime("%Y-%m-%d", Transcription.completed_at)
    raise NotImplementedError(f"usage by day is not written for {dialect}")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
