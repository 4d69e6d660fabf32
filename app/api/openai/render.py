"""A completed transcription in each of OpenAI's ``response_format``s. Pure functions over
the stored result.

Voxhook's result has utterances (with words when aligned, speakers when diarized); OpenAI's
shapes are built from them:

- ``json``: ``{"text", "usage"}``; ``text``: the transcript and a newline;
- ``srt`` / ``vtt``: Voxhook's own caption exports (the same cues as ``/export``);
- ``verbose_json``: task, language (ISO 639-1 code), duration, text, ``segments`` (one per
  utterance) and, with ``timestamp_granularities[]=word``, ``words``. Whisper's per-segment
  decoding figures that Voxhook does not keep are derived or neutral: ``avg_logprob`` is the
  log of the utterance's confidence, ``compression_ratio`` is computed from its text,
  ``no_speech_prob`` is 0, ``tokens`` is empty, ``seek`` is the start in centiseconds;
- ``diarized_json``: one ``transcript.text.segment`` per utterance with its speaker.

``usage`` is ``{"type": "duration", "seconds": …}``, the audio's length rounded up, as
OpenAI bills Whisper.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from app.transcriptions.exports import to_srt, to_vtt

#: ``avg_logprob`` of an utterance whose confidence is 0 (log 0 is not a JSON number).
LOWEST_LOGPROB = -10.0
#: Media types of the formats that are not JSON.
TEXT_TYPES = {"text": "text/plain; charset=utf-8", "srt": "application/x-subrip",
              "vtt": "text/vtt; charset=utf-8"}


def usage(result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(result.get("duration_seconds") or 0)}


def render(result: dict[str, Any], response_format: str, *, task: str, words: bool,
           segments: bool, temperature: float | None) -> dict[str, Any] | str:
    """The body of the answer: a dict for the JSON formats, text for the others."""
    text = result.get("full_transcript", "")
    if response_format == "text":
        return text + "\n"
    if response_format == "srt":
        return to_srt(result)
    if response_format == "vtt":
        return to_vtt(result)
    if response_format == "verbose_json":
        return verbose(result, task=task, words=words, segments=segments,
                       temperature=temperature)
    if response_format == "diarized_json":
        return diarized(result)
    return {"text": text, "usage": usage(result)}


def verbose(result: dict[str, Any], *, task: str, words: bool, segments: bool,
            temperature: float | None) -> dict[str, Any]:
    utterances = result.get("utterances") or []
    body: dict[str, Any] = {
        "task": task, "language": result.get("language") or "",
        "duration": result.get("duration_seconds") or 0.0,
        "text": result.get("full_transcript", ""),
    }
    if segments:
        body["segments"] = [_segment(index, u, temperature or 0.0)
                            for index, u in enumerate(utterances)]
    if words:
        body["words"] = [{"word": w["word"], "start": w["start"], "end": w["end"]}
                         for u in utterances for w in u.get("words") or ()]
    body["usage"] = usage(result)
    return body


def _segment(index: int, utterance: dict[str, Any], temperature: float) -> dict[str, Any]:
    text = utterance["text"]
    confidence = utterance.get("confidence") or 0.0
    return {
        "id": index, "seek": round(utterance["start"] * 100),
        "start": utterance["start"], "end": utterance["end"], "text": text,
        "tokens": [], "temperature": temperature,
        "avg_logprob": math.log(confidence) if confidence > 0 else LOWEST_LOGPROB,
        "compression_ratio": compression_ratio(text), "no_speech_prob": 0.0,
    }


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetitiveness: the text's length over its zlib-compressed length."""
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def diarized(result: dict[str, Any]) -> dict[str, Any]:
    utterances = result.get("utterances") or []
    return {
        "task": "transcribe", "duration": result.get("duration_seconds") or 0.0,
        "text": result.get("full_transcript", ""),
        "segments": [{"type": "transcript.text.segment", "id": f"seg_{index}",
                      "start": u["start"], "end": u["end"], "text": u["text"],
                      "speaker": u.get("speaker") or "SPEAKER 1"}
                     for index, u in enumerate(utterances)],
        "usage": usage(result),
    }
