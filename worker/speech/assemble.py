"""Assembly: the engine's segments into the result of SPEC.md §2. Pure functions.

The result must be consistent whatever the model writes (a random or hallucinating model
writes times past the end, words out of order, or words that do not match the segment text):

- every time is clamped into [0, duration];
- word times never go backwards, and each word's end is at or after its start;
- an utterance spans exactly its words when it has words, so every word lies inside it;
- utterances never go backwards either;
- ``full_transcript`` is the utterances' texts joined by single spaces.

Without diarization an utterance is one segment of the engine. With diarization (speaker
turns given) the words are labelled by :mod:`worker.speech.speakers` and regrouped: an utterance
is one speaker's run of words, cut at pauses and before it grows too long, and its speaker
is its words' speaker. A segment the engine gave no words stays one utterance, labelled by
its own span.

An utterance's ``confidence`` is the mean of its words' confidences; without words it is
``exp`` of the segment's average token log-probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.speech.asr import AsrOutput, AsrSegment
from worker.speech.diarization import SpeakerTurn
from worker.speech.speakers import (
    DEFAULT_RULES,
    UtteranceRules,
    assign_speakers,
    number_speakers,
    utterance_breaks,
)
from worker.speech.voices import rename_speakers

#: Times are reported to the millisecond.
_DECIMALS = 3


def build_result(output: AsrOutput, duration_s: float, with_words: bool,
                 turns: Sequence[SpeakerTurn] | None = None,
                 rules: UtteranceRules = DEFAULT_RULES,
                 known_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``result`` object of a completed transcription; ``turns`` given: diarized.

    ``known_names`` (diarizer label -> name) names recognised speakers instead of
    numbering them (see :mod:`worker.speech.voices`)."""
    pieces: list[_Piece] = []
    floor = 0.0  # nothing may start before the previous thing ended
    for segment in output.segments:
        piece, end = _utterance(segment, duration_s, floor, with_words or turns is not None)
        if not piece.utterance["text"]:
            continue  # nothing was said: no utterance, and time does not move
        pieces.append(piece)
        floor = end
    if turns is None:
        utterances = [piece.utterance for piece in pieces]
        speakers: list[str] = []
    else:
        utterances, speakers = _diarized(pieces, turns, rules, known_names or {})
    return {
        "full_transcript": " ".join(u["text"] for u in utterances),
        "language": output.language,
        "duration_seconds": round(duration_s, _DECIMALS),
        "speakers": speakers,
        "utterances": utterances,
    }


@dataclass
class _Piece:
    """One segment's utterance, with what regrouping needs to know of its words."""

    utterance: dict[str, Any]
    #: Per word: whether the engine gave it usable (finite) times.
    timed: list[bool]
    #: Per word: whether a space comes before it.
    spaced: list[bool]


def _diarized(pieces: list[_Piece], turns: Sequence[SpeakerTurn], rules: UtteranceRules,
              known_names: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Label every word (and every wordless utterance), then cut utterances anew."""
    units: list[tuple[dict[str, Any], bool, bool] | _Piece] = []
    for piece in pieces:
        words = piece.utterance.get("words") or []
        if words:
            units.extend(zip(words, piece.timed, piece.spaced, strict=True))
        else:
            units.append(piece)
    spans = [_unit_span(unit) for unit in units]
    raw = assign_speakers(spans, turns)
    names = number_speakers(raw, turns)
    if known_names:
        names = rename_speakers(names, known_names)
    utterances: list[dict[str, Any]] = []
    run: list[tuple[dict[str, Any], bool]] = []  # consecutive words: (word, spaced)
    for unit, label in zip(units, raw, strict=True):
        speaker = names.get(label) if label is not None else None
        if isinstance(unit, _Piece):
            utterances.extend(_regroup(run, rules))
            run = []
            unit.utterance["speaker"] = speaker
            utterances.append(unit.utterance)
        else:
            word, _, spaced = unit
            word["speaker"] = speaker
            run.append((word, spaced))
    utterances.extend(_regroup(run, rules))
    return utterances, list(names.values())


def _unit_span(unit: tuple[dict[str, Any], bool, bool] | _Piece) -> tuple[float, float] | None:
    if isinstance(unit, _Piece):
        return unit.utterance["start"], unit.utterance["end"]
    word, timed, _ = unit
    return (word["start"], word["end"]) if timed else None


def _regroup(run: list[tuple[dict[str, Any], bool]],
             rules: UtteranceRules) -> list[dict[str, Any]]:
    """Cut a run of labelled words into utterances (see :mod:`worker.speech.speakers`)."""
    if not run:
        return []
    breaks = utterance_breaks(
        [(w["word"], w["start"], w["end"], w["speaker"]) for w, _ in run], rules)
    utterances = []
    for first, last in zip(breaks, [*breaks[1:], len(run)], strict=True):
        group = run[first:last]
        words = [word for word, _ in group]
        text = "".join((" " if spaced and i else "") + word["word"]
                       for i, (word, spaced) in enumerate(group))
        utterances.append({
            "start": words[0]["start"], "end": words[-1]["end"], "text": text,
            "speaker": words[0]["speaker"],
            "confidence": round(sum(w["confidence"] for w in words) / len(words), 4),
            "words": words,
        })
    return utterances


def _utterance(segment: AsrSegment, duration: float, floor: float,
               with_words: bool) -> tuple[_Piece, float]:
    words: list[dict[str, Any]] = []
    timed: list[bool] = []
    spaced: list[bool] = []
    cursor = floor
    if with_words:
        for word in segment.words:
            if not word.word:
                continue
            start = max(_clamp(word.start, duration), cursor)
            end = max(_clamp(word.end, duration), start)
            words.append({"word": word.word, "start": start, "end": end,
                          "confidence": _unit(word.probability), "speaker": None})
            timed.append(math.isfinite(word.start) and math.isfinite(word.end))
            spaced.append(word.spaced)
            cursor = end
    if words:
        start, end = words[0]["start"], words[-1]["end"]
        confidence = sum(w["confidence"] for w in words) / len(words)
    else:
        start = max(_clamp(segment.start, duration), floor)
        end = max(_clamp(segment.end, duration), start)
        # A log-probability is <= 0; a model writing more must not overflow exp().
        confidence = _unit(math.exp(min(segment.avg_logprob, 0.0)))
    # The segment's text, or its words' when the model wrote words but no text.
    text = segment.text or " ".join(w["word"] for w in words)
    utterance: dict[str, Any] = {
        "start": start, "end": end, "text": text, "speaker": None,
        "confidence": round(confidence, 4),
    }
    if with_words:
        utterance["words"] = words
    return _Piece(utterance, timed, spaced), end


def _clamp(seconds: float, duration: float) -> float:
    if not math.isfinite(seconds):
        return 0.0
    return round(min(max(seconds, 0.0), duration), _DECIMALS)


def _unit(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return round(min(max(value, 0.0), 1.0), 4)
