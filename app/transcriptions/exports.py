"""Exports of a completed transcription's ``result``: SRT, WebVTT, plain text and JSON.

Pure functions over the stored result (see ``ResultSchema``): no Flask, no speech stack, so
they are cheap to test and the API process stays light.

Captions (SRT and WebVTT) share one cue builder, :func:`build_cues`, so both formats show the
same cues at the same times. Its rules, and why:

- **Readability limits** (:class:`CaptionLimits`): at most 42 characters a line and 2 lines a
  cue, the usual broadcast guidelines, and at most 7 s a cue so a caption never lingers
  while other speech goes on. Lines are filled greedily: line 1 up to the limit, then line 2.
- **Words are never split.** A word longer than a line stands alone on its line (and a word
  longer than 7 s alone in its cue): breaking it would show text that was never said.
- **The speaker label counts.** When diarized, SRT shows ``SPEAKER 1: `` in front of the
  first line; its characters count toward that line's 42, since the limit is about what a
  viewer reads. WebVTT names the speaker in a ``<v SPEAKER 1>`` voice tag instead, but the
  same room is kept so that both formats carry identical cues.
- **A cue never mixes two speakers nor crosses an utterance boundary**, and a silence longer
  than ``CaptionLimits.max_pause_seconds`` inside an utterance starts a new cue, so no caption
  stays on screen through a pause.
- **Times**: with word timings a cue runs from its first word's start to its last word's end.
  Without them (alignment off) the utterance text is split at spaces and the utterance's time
  is spread over its words in proportion to their characters, so the same packing applies.
  Times are never negative, a cue never ends before it starts and consecutive cues never
  overlap: odd input is clamped rather than refused, since an export must always be playable.

Plain text: without diarization, one paragraph per utterance (blank lines between), which
mirrors the JSON's utterances; with diarization, ``SPEAKER 1: …`` paragraphs in which the
consecutive utterances of one speaker are merged, like a script.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMATS",
    "CaptionLimits",
    "Cue",
    "ExportFormat",
    "build_cues",
    "render",
    "speaker_prefix",
    "to_json",
    "to_srt",
    "to_text",
    "to_vtt",
]


@dataclass(frozen=True)
class CaptionLimits:
    """How much a caption cue may hold.

    Defaults follow common subtitling guidelines (e.g. Netflix's and the BBC's): 42
    characters a line, 2 lines, 7 seconds on screen.
    """

    #: Characters a line may show, the speaker label included (a lone over-long word excepted).
    max_line_chars: int = 42
    #: Lines a cue may show.
    max_lines: int = 2
    #: Seconds from a cue's start to its end (a lone word that lasts longer excepted).
    max_cue_seconds: float = 7.0
    #: A silence longer than this between two words of an utterance starts a new cue;
    #: None never splits at pauses.
    max_pause_seconds: float | None = 2.0


@dataclass(frozen=True)
class Cue:
    """One caption: its times in seconds, the lines it shows and who speaks it.

    ``lines`` hold the words only; the speaker label is added by the format that shows it.
    """

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None


@dataclass(frozen=True)
class ExportFormat:
    """An export's ``format`` value, file extension and HTTP media type."""

    name: str
    extension: str
    media_type: str


#: The formats an export can take, by the ``format`` query value.
FORMATS: dict[str, ExportFormat] = {
    "srt": ExportFormat("srt", "srt", "application/x-subrip; charset=utf-8"),
    "vtt": ExportFormat("vtt", "vtt", "text/vtt; charset=utf-8"),
    "txt": ExportFormat("txt", "txt", "text/plain; charset=utf-8"),
    "json": ExportFormat("json", "json", "application/json"),
}


def speaker_prefix(speaker: str | None) -> str:
    """What SRT and plain text put before a speaker's words (``"SPEAKER 1: "``), or ``""``."""
    return f"{speaker}: " if speaker else ""


# --------------------------------------------------------------------------- cue building


@dataclass(frozen=True)
class _Word:
    text: str
    start: float
    end: float
    speaker: str | None


def _seconds(value: Any) -> float:
    """A time as a finite, non-negative float (stored results are clean; this is a guard)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0.0 else 0.0


def _clean(text: Any) -> str:
    """A word or text with its whitespace runs made single spaces (no stray line breaks)."""
    return " ".join(str(text or "").split())


def _utterance_words(utterance: Mapping[str, Any]) -> list[_Word]:
    """The utterance's timed words: its own when aligned, else its text's words, timed by
    spreading the utterance over them in proportion to their characters."""
    speaker = utterance.get("speaker") or None
    words = [
        _Word(text, _seconds(word.get("start")), _seconds(word.get("end")),
              word.get("speaker") or speaker)
        for word in utterance.get("words") or ()
        if (text := _clean(word.get("word")))
    ]
    if words:
        return words
    tokens = _clean(utterance.get("text")).split(" ")
    tokens = [token for token in tokens if token]
    total = sum(len(token) for token in tokens)
    if not total:
        return []
    start = _seconds(utterance.get("start"))
    duration = max(_seconds(utterance.get("end")) - start, 0.0)
    spread: list[_Word] = []
    before = 0
    for token in tokens:
        spread.append(_Word(token, start + duration * before / total,
                            start + duration * (before + len(token)) / total, speaker))
        before += len(token)
    return spread


class _CueDraft:
    """The cue being filled: accepts words while every limit still holds."""

    def __init__(self, first: _Word, limits: CaptionLimits) -> None:
        self.limits = limits
        self.words = [first]
        self.lines: list[list[str]] = [[first.text]]
        self.speaker = first.speaker

    def _width(self, line_index: int) -> int:
        """Characters line ``line_index`` may hold; the first shares room with the label."""
        label = len(speaker_prefix(self.speaker)) if line_index == 0 else 0
        return self.limits.max_line_chars - label

    def add(self, word: _Word) -> bool:
        """Take ``word`` if it belongs in this cue and fits; False means start a new cue."""
        first, last = self.words[0], self.words[-1]
        if word.speaker != self.speaker:
            return False
        if word.end - first.start > self.limits.max_cue_seconds:
            return False
        pause = self.limits.max_pause_seconds
        if pause is not None and word.start - last.end > pause:
            return False
        line = self.lines[-1]
        used = sum(len(text) for text in line) + len(line) - 1
        if used + 1 + len(word.text) <= self._width(len(self.lines) - 1):
            line.append(word.text)
        elif len(self.lines) < self.limits.max_lines:
            self.lines.append([word.text])  # alone on it even when longer than a line
        else:
            return False
        self.words.append(word)
        return True

    def cue(self) -> Cue:
        return Cue(start=self.words[0].start, end=self.words[-1].end,
                   lines=tuple(" ".join(line) for line in self.lines), speaker=self.speaker)


def build_cues(result: Mapping[str, Any], limits: CaptionLimits | None = None) -> list[Cue]:
    """The caption cues of a result, in order, within ``limits`` (see the module docstring)."""
    limits = limits or CaptionLimits()
    cues: list[Cue] = []
    for utterance in result.get("utterances") or ():
        draft: _CueDraft | None = None
        for word in _utterance_words(utterance):
            if draft is None:
                draft = _CueDraft(word, limits)
            elif not draft.add(word):
                cues.append(draft.cue())
                draft = _CueDraft(word, limits)
        if draft is not None:
            cues.append(draft.cue())
    return _without_overlaps(cues)


def _without_overlaps(cues: Iterable[Cue]) -> list[Cue]:
    """Clamp times so none is negative, none ends before it starts, and none overlaps."""
    clamped: list[Cue] = []
    floor = 0.0
    for cue in cues:
        start = max(cue.start, floor)
        end = max(cue.end, start)
        clamped.append(Cue(start, end, cue.lines, cue.speaker))
        floor = end
    return clamped


# --------------------------------------------------------------------------- formats


def _timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``, rounded to the millisecond (rounding keeps the order of times,
    so cues that did not overlap still do not)."""
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(result: Mapping[str, Any], limits: CaptionLimits | None = None) -> str:
    """SubRip: numbered cues from 1, ``HH:MM:SS,mmm`` times, a blank line between cues.

    A diarized cue's first line starts with ``SPEAKER n: `` (counted in the line's limit).
    """
    blocks = []
    for index, cue in enumerate(build_cues(result, limits), start=1):
        lines = list(cue.lines)
        lines[0] = speaker_prefix(cue.speaker) + lines[0]
        blocks.append(f"{index}\n{_timestamp(cue.start, ',')} --> "
                      f"{_timestamp(cue.end, ',')}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    """Escape what WebVTT cue text reserves (``&``, ``<``, ``>``; this also defuses ``-->``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: Mapping[str, Any], limits: CaptionLimits | None = None) -> str:
    """WebVTT: the ``WEBVTT`` header, ``HH:MM:SS.mmm`` times; a diarized cue opens with a
    ``<v SPEAKER n>`` voice tag, which players style or announce rather than print."""
    blocks = ["WEBVTT\n"]
    for cue in build_cues(result, limits):
        lines = [_vtt_escape(line) for line in cue.lines]
        if cue.speaker:
            lines[0] = f"<v {_vtt_escape(cue.speaker)}>{lines[0]}"
        blocks.append(f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n"
                      + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _is_diarized(result: Mapping[str, Any]) -> bool:
    return bool(result.get("speakers")) or any(
        utterance.get("speaker") for utterance in result.get("utterances") or ())


def to_text(result: Mapping[str, Any]) -> str:
    """Plain text in paragraphs separated by blank lines (see the module docstring).

    Without diarization each utterance is a paragraph; with it, each run of one speaker's
    consecutive utterances is one ``SPEAKER n: …`` paragraph.
    """
    utterances = [(utterance.get("speaker") or None, _clean(utterance.get("text")))
                  for utterance in result.get("utterances") or ()]
    utterances = [(speaker, text) for speaker, text in utterances if text]
    paragraphs: list[tuple[str | None, list[str]]] = []
    diarized = _is_diarized(result)
    for speaker, text in utterances:
        if diarized and paragraphs and paragraphs[-1][0] == speaker:
            paragraphs[-1][1].append(text)
        else:
            paragraphs.append((speaker, [text]))
    if not paragraphs:
        return ""
    return "\n\n".join(speaker_prefix(speaker) + " ".join(texts)
                       for speaker, texts in paragraphs) + "\n"


def analysis_text(result: Mapping[str, Any]) -> str:
    """The AI analyses after the transcript in plain text: a heading per analysis, then its
    answer (fields as ``name: value`` lines, lists as ``- `` items), or why it failed."""
    analyses = result.get("analysis") or {}
    if not analyses:
        return ""
    sections = []
    for name, outcome in analyses.items():
        heading = name.replace("_", " ").replace("-", " ").capitalize()
        if outcome.get("status") != "completed":
            sections.append(f"{heading}\n(failed: {outcome.get('error') or 'unknown reason'})")
            continue
        answer = outcome.get("result") or {}
        lines = _plain_lines(answer[next(iter(answer))] if len(answer) == 1 else answer)
        sections.append(heading + "\n" + "\n".join(lines))
    return "\n---\nAI analysis\n\n" + "\n\n".join(sections) + "\n"


def _plain_lines(value: Any) -> list[str]:
    """A JSON answer as lines a person reads."""
    if isinstance(value, Mapping):
        return [f"{key.replace('_', ' ')}: {_plain_value(item)}" for key, item in value.items()]
    if isinstance(value, list):
        return [f"- {_plain_value(item)}" for item in value] or ["(none)"]
    return [_plain_value(value)]


def _plain_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{key.replace('_', ' ')}: {_plain_value(item)}"
                         for key, item in value.items() if item is not None)
    if isinstance(value, list):
        return ", ".join(_plain_value(item) for item in value)
    return "" if value is None else str(value)


def to_json(body: Mapping[str, Any]) -> str:
    """The transcription as its surface's GET answers it, indented for a file on disk."""
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def render(format_name: str, result: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """The export in ``format_name`` (a key of :data:`FORMATS`): captions and text from the
    ``result``, JSON from the surface's whole ``body``."""
    if format_name == "srt":
        return to_srt(result)
    if format_name == "vtt":
        return to_vtt(result)
    if format_name == "txt":
        return to_text(result) + analysis_text(result)
    if format_name == "json":
        return to_json(body)
    raise ValueError(f"unknown export format {format_name!r}; one of {', '.join(FORMATS)}")

