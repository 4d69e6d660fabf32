"""Who said each word: speaker turns onto words, and words into utterances. Pure functions.

- A word goes to the speaker whose turns overlap it most. A tie (a word inside two
  overlapping turns) goes to the previous word's speaker when it is one of the tied, else to
  the speaker whose turn there is longest: people rarely hand over mid-overlap.
- A word in a gap between turns goes to the nearest turn.
- A word without usable times inherits its neighbours' speaker (the previous word's, else
  the next one's).
- With no turns at all (the diarizer heard nobody) every word goes to one speaker.
- Labels are renumbered ``SPEAKER 1``, ``SPEAKER 2``… in order of first appearance in the
  transcript; speakers the diarizer heard who said no transcribed word come last.

Utterances then break where the speaker changes, at pauses of at least
:attr:`UtteranceRules.pause_s`, and before they grow past a readable length: after a
sentence once :attr:`UtteranceRules.soft_chars` is passed, and anywhere at
:attr:`UtteranceRules.max_chars` or :attr:`UtteranceRules.max_duration_s`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from worker.speech.diarization import SpeakerTurn

#: Sentence-ending punctuation, in the scripts Whisper writes most.
_SENTENCE_END = (".", "?", "!", "…", "。", "\uff1f", "\uff01")  # also full-width ? and !


@dataclass(frozen=True)
class UtteranceRules:
    """Where a speaker's words are cut into utterances (readable captions and paragraphs)."""

    #: A silence this long between two words starts a new utterance.
    pause_s: float = 1.0
    #: Past this many characters, the next sentence end closes the utterance.
    soft_chars: int = 200
    #: An utterance never grows past this many characters…
    max_chars: int = 400
    #: …or this many seconds.
    max_duration_s: float = 30.0


class TurnIndex:
    """Turns sorted by start, with the running maximum of their ends, for fast lookups.

    Words arrive in time order and turns may overlap, so a lookup bisects on starts and
    walks back only while an earlier turn can still reach the word.
    """

    def __init__(self, turns: Sequence[SpeakerTurn]) -> None:
        self.turns = sorted((t for t in turns if t.end > t.start), key=lambda t: t.start)
        self.starts = [turn.start for turn in self.turns]
        self.reach: list[float] = []  # reach[i]: the latest end among turns[0..i]
        for turn in self.turns:
            self.reach.append(max(turn.end, self.reach[-1] if self.reach else turn.end))

    def __bool__(self) -> bool:
        return bool(self.turns)

    def overlaps(self, start: float, end: float) -> dict[str, tuple[float, float]]:
        """Per speaker: (seconds of overlap with [start, end], longest overlapping turn)."""
        found: dict[str, tuple[float, float]] = {}
        index = bisect.bisect_left(self.starts, end) - 1
        while index >= 0 and self.reach[index] > start:
            turn = self.turns[index]
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > 0:
                total, longest = found.get(turn.speaker, (0.0, 0.0))
                found[turn.speaker] = (total + overlap, max(longest, turn.end - turn.start))
            index -= 1
        return found

    def nearest(self, start: float, end: float) -> str:
        """The speaker of the turn closest to [start, end] (for a word in a gap)."""
        middle = (start + end) / 2
        best, best_distance = self.turns[0].speaker, math.inf
        after = bisect.bisect_left(self.starts, middle)
        if after < len(self.turns):  # the first turn starting after the word
            best, best_distance = self.turns[after].speaker, self.turns[after].start - middle
        index = after - 1  # turns starting before: the one ending last is nearest
        while index >= 0 and self.reach[index] >= middle - best_distance:
            turn = self.turns[index]
            distance = max(middle - turn.end, 0.0)
            if distance < best_distance:
                best, best_distance = turn.speaker, distance
            index -= 1
        return best


def assign_speakers(spans: Sequence[tuple[float, float] | None],
                    turns: Sequence[SpeakerTurn]) -> list[str | None]:
    """The diarizer's label for each word span, in order; None spans are untimed words.

    When no word has times at all, every word goes to the first turn's speaker.
    """
    index = TurnIndex(turns)
    speakers: list[str | None] = []
    previous: str | None = None
    for span in spans:
        if span is None:
            speakers.append(None)
            continue
        start, end = span
        if not index:
            speaker = "SPEAKER_00"  # nobody was heard: one speaker said everything
        else:
            speaker = _best_overlap(index.overlaps(start, end), previous)
            if speaker is None:
                speaker = index.nearest(start, end)
        speakers.append(speaker)
        previous = speaker
    if previous is None and spans:  # not one word had times
        only = index.turns[0].speaker if index else "SPEAKER_00"
        return [only] * len(spans)
    return _inherit(speakers)


def _best_overlap(overlaps: dict[str, tuple[float, float]], previous: str | None) -> str | None:
    if not overlaps:
        return None
    most = max(total for total, _ in overlaps.values())
    tied = [speaker for speaker, (total, _) in overlaps.items() if most - total < 1e-9]
    if previous in tied:
        return previous
    return max(tied, key=lambda speaker: overlaps[speaker][1])


def _inherit(speakers: list[str | None]) -> list[str | None]:
    """Untimed words take the previous word's speaker, or the next one's at the start."""
    result = list(speakers)
    last: str | None = None
    for i, speaker in enumerate(result):
        if speaker is None:
            result[i] = last
        else:
            last = speaker
    following: str | None = None
    for i in range(len(result) - 1, -1, -1):
        if result[i] is None:
            result[i] = following
        else:
            following = result[i]
    return result


def number_speakers(raw_labels: Sequence[str | None],
                    turns: Sequence[SpeakerTurn] = ()) -> dict[str, str]:
    """The diarizer's labels → ``SPEAKER 1``, ``SPEAKER 2``…

    Speakers who said words are numbered in order of first appearance in the transcript
    (``raw_labels``, the words' labels in order). Speakers the diarizer heard but whose
    speech gave no words (a laugh, a word the speech model dropped) follow, in order of
    their first turn: they were there, and a request for two speakers shows two.
    """
    names: dict[str, str] = {}
    later = (turn.speaker for turn in sorted(turns, key=lambda t: t.start) if turn.end > turn.start)
    for label in itertools.chain(raw_labels, later):
        if label is not None and label not in names:
            names[label] = f"SPEAKER {len(names) + 1}"
    return names


#: The rules used unless a caller gives others.
DEFAULT_RULES = UtteranceRules()


def utterance_breaks(words: Sequence[tuple[str, float, float, str | None]],
                     rules: UtteranceRules = DEFAULT_RULES) -> list[int]:
    """Indexes of the words that open an utterance (always 0 when there are words).

    ``words`` are (text, start, end, speaker) in time order.
    """
    breaks: list[int] = []
    chars = 0
    opened_at = 0.0
    for i, (text, start, end, speaker) in enumerate(words):
        if i == 0:
            breaks.append(0)
            chars, opened_at = len(text), start
            continue
        previous_text, _, previous_end, previous_speaker = words[i - 1]
        new = (
            speaker != previous_speaker
            or start - previous_end >= rules.pause_s
            or chars + 1 + len(text) > rules.max_chars
            or end - opened_at > rules.max_duration_s
            or (chars >= rules.soft_chars and previous_text.endswith(_SENTENCE_END))
        )
        if new:
            breaks.append(i)
            chars, opened_at = len(text), start
        else:
            chars += 1 + len(text)
    return breaks
