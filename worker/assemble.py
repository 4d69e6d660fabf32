"""Assembly: the engine's segments into the result of SPEC.md §2. Pure functions.

The result must be consistent whatever the model writes (a random or hallucinating model
writes times past the end, words out of order, or words that do not match the segment text):

- every time is clamped into [0, duration];
- word times never go backwards, and each word's end is at or after its start;
- an utterance spans exactly its words when it has words, so every word lies inside it;
- utterances never go backwards either;
- ``full_transcript`` is the utterances' texts joined by single spaces.
"""

from __future__ import annotations

import math
from typing import Any

from worker.asr import AsrOutput, AsrSegment

#: Times are reported to the millisecond.
_DECIMALS = 3


def build_result(output: AsrOutput, duration_s: float, with_words: bool) -> dict[str, Any]:
    """The ``result`` object of a completed transcription."""
    utterances: list[dict[str, Any]] = []
    floor = 0.0  # nothing may start before the previous thing ended
    for segment in output.segments:
        utterance, end = _utterance(segment, duration_s, floor, with_words)
        if not utterance["text"]:
            continue  # nothing was said: no utterance, and time does not move
        utterances.append(utterance)
        floor = end
    return {
        "full_transcript": " ".join(u["text"] for u in utterances),
        "language": output.language,
        "duration_seconds": round(duration_s, _DECIMALS),
        "speakers": [],
        "utterances": utterances,
    }


def _utterance(segment: AsrSegment, duration: float, floor: float,
               with_words: bool) -> tuple[dict[str, Any], float]:
    words: list[dict[str, Any]] = []
    cursor = floor
    if with_words:
        for word in segment.words:
            if not word.word:
                continue
            start = max(_clamp(word.start, duration), cursor)
            end = max(_clamp(word.end, duration), start)
            words.append({"word": word.word, "start": start, "end": end,
                          "confidence": _unit(word.probability), "speaker": None})
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
    return utterance, end


def _clamp(seconds: float, duration: float) -> float:
    if not math.isfinite(seconds):
        return 0.0
    return round(min(max(seconds, 0.0), duration), _DECIMALS)


def _unit(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return round(min(max(value, 0.0), 1.0), 4)
