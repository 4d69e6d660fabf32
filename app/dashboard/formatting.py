"""How the dashboard writes numbers, money, durations and times for people.

Money arrives as integer micro-dollars and leaves through :func:`app.billing.wallet.
format_usd`, so a page shows exactly what the ledger holds (never a float).
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.billing.wallet import format_usd
from app.store.models import as_utc

#: What a missing figure shows: an en dash.
MISSING = "\u2013"
#: Speakers get one of this many colours (``speaker-1`` … in the stylesheet), in turn.
SPEAKER_COLOURS = 6


def usd(micro_usd: int | None) -> str:
    """12_500_000 -> ``$12.50``; 6667 -> ``$0.006667``; None -> an en dash."""
    if micro_usd is None:
        return MISSING
    text = format_usd(micro_usd)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def duration(seconds: float | None) -> str:
    """11.0 -> ``0:11``; 3725 -> ``1:02:05``; None -> an en dash."""
    if seconds is None:
        return MISSING
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def timestamp(seconds: float | None) -> str:
    """A position in the audio, to the tenth of a second: 65.24 -> ``1:05.2``."""
    if seconds is None:
        return ""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest // 10:02d}.{rest % 10}"


def when(moment: datetime | None) -> str:
    """A stored time as ``2026-12-05 21:40 UTC``."""
    if moment is None:
        return MISSING
    return as_utc(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def minutes(audio_ms: int) -> str:
    """Audio as minutes with one decimal: 90_000 ms -> ``1.5``."""
    return f"{audio_ms / 60_000:.1f}"


def speaker_class(label: str | None, speakers: list[str]) -> str:
    """The CSS class colouring a speaker's words: by order of first appearance."""
    if not label or label not in speakers:
        return "speaker-none"
    return f"speaker-{speakers.index(label) % SPEAKER_COLOURS + 1}"
