"""A remote speech engine: any server speaking OpenAI's ``POST /audio/transcriptions``.

It stands where the local faster-whisper engine stands (:class:`worker.speech.asr.AsrEngine`:
the same ``transcribe`` and the same :class:`~worker.speech.asr.AsrOutput`), so everything
around it is unchanged: fetch, decode, limits and billing before; diarization, assembly,
analysis and webhooks after. What it does:

- cuts audio longer than the engine's ``max_piece_seconds`` at silences
  (:mod:`worker.speech.splitting`), sends each piece as 16 kHz mono WAV, up to
  ``concurrency`` at once, and shifts each piece's times by where it starts, so the stitched
  transcript's times run continuously from the start of the file;
- asks ``verbose_json`` with word and segment timestamps (words only if the pipeline says
  the engine gives them) and takes what comes: segments and words, segments alone, or only
  ``text`` (one segment spanning the piece); words are placed into the segment they fall in;
- clamps every time into its piece, since an engine can write times past the audio;
- retries what may pass (:mod:`worker.remote_http`), then fails the job with
  :class:`worker.errors.EngineFailed`, whose code says what happened and whose message names
  the pipeline, the engine and what to do.
"""

from __future__ import annotations

import io
import logging
import math
import secrets
import wave
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import Settings
from app.transcriptions.languages import ISO_639_1, WHISPER_LANGUAGES
from app.transcriptions.pipelines import Pipeline
from worker.errors import EngineFailed
from worker.remote_http import RemoteCaller, RemoteFailure
from worker.speech.asr import AsrOutput, AsrSegment, AsrWord, ProgressCallback, SegmentCallback
from worker.speech.splitting import SAMPLE_RATE, split_points

log = logging.getLogger(__name__)

#: Whisper's language names (OpenAI's ``verbose_json`` says "english"), in the order of
#: :data:`WHISPER_LANGUAGES`.
_WHISPER_NAMES = (
    "english,chinese,german,spanish,russian,korean,french,japanese,portuguese,turkish,polish,"
    "catalan,dutch,arabic,swedish,italian,indonesian,hindi,finnish,vietnamese,hebrew,"
    "ukrainian,greek,malay,czech,romanian,danish,hungarian,tamil,norwegian,thai,urdu,croatian,"
    "bulgarian,lithuanian,latin,maori,malayalam,welsh,slovak,telugu,persian,latvian,bengali,"
    "serbian,azerbaijani,slovenian,kannada,estonian,macedonian,breton,basque,icelandic,"
    "armenian,nepali,mongolian,bosnian,kazakh,albanian,swahili,galician,marathi,punjabi,"
    "sinhala,khmer,shona,yoruba,somali,afrikaans,occitan,georgian,belarusian,tajik,sindhi,"
    "gujarati,amharic,yiddish,lao,uzbek,faroese,haitian creole,pashto,turkmen,nynorsk,maltese,"
    "sanskrit,luxembourgish,myanmar,tibetan,tagalog,malagasy,assamese,tatar,lingala,hausa,"
    "bashkir,javanese,sundanese").split(",")
LANGUAGE_BY_NAME = dict(zip(_WHISPER_NAMES, WHISPER_LANGUAGES, strict=True))

#: What each kind of failure means for the user, and what to do about it.
_ADVICE = {
    "refused": ("engine_url_refused", "its address is not allowed: the operator must set "
                "allow_private_network = true in the pipeline's [pipeline.engine] (or list the "
                "host in VOXHOOK_FETCH_ALLOWLIST)"),
    "unavailable": ("engine_unavailable", "the engine is down or failing; try again later, "
                    "or choose another pipeline (GET /api/v1/pipelines)"),
    "rate_limited": ("engine_rate_limited", "the engine is rate-limiting this server; try "
                     "again in a few minutes, or choose another pipeline"),
    "timeout": ("engine_timeout", "the engine did not answer in time; try again later, or "
                "the operator may raise the engine's timeout_s"),
    "rejected": ("engine_rejected", "the engine refused the request; the operator should "
                 "check the engine's model, key (api_key_env) and max_piece_seconds"),
    "malformed": ("engine_bad_answer", "the engine's answer could not be read; the operator "
                  "should check that base_url points at an OpenAI-compatible audio API"),
}


@dataclass(frozen=True)
class _Piece:
    """What the engine said about one piece, in the piece's own times."""

    segments: list[AsrSegment]
    language: str | None


class RemoteAsrEngine:
    """A pipeline's remote engine; one per pipeline, kept for the worker's lifetime."""

    def __init__(self, pipeline: Pipeline, settings: Settings,
                 caller: RemoteCaller | None = None) -> None:
        assert pipeline.engine is not None
        self.pipeline = pipeline
        self.engine = pipeline.engine
        self.caller = caller or RemoteCaller(self.engine, settings)
        log.info("pipeline %s: remote engine %s (model %s)", pipeline.code,
                 self.engine.base_url, self.engine.model)

    def transcribe(self, samples: np.ndarray, *, language: str | None, word_timestamps: bool,
                   on_progress: ProgressCallback | None = None,
                   on_segment: SegmentCallback | None = None,
                   task: str = "transcribe", initial_prompt: str | None = None,
                   temperature: float | None = None) -> AsrOutput:
        """Transcribe 16 kHz mono samples piece by piece (see the module docstring)."""
        pieces = split_points(samples, self.engine.max_piece_seconds)
        ask_words = word_timestamps and self.engine.words
        log.info("pipeline %s: %d piece(s) to %s", self.pipeline.code, len(pieces),
                 self.engine.base_url)

        def send(bounds: tuple[int, int]) -> _Piece:
            start, end = bounds
            return self._send(samples[start:end], language, ask_words, task, initial_prompt,
                              temperature)

        segments: list[AsrSegment] = []
        languages: list[str] = []
        pool = ThreadPoolExecutor(max_workers=min(self.engine.concurrency, len(pieces)),
                                  thread_name_prefix="voxhook-engine")
        try:
            futures: list[Future[_Piece]] = [pool.submit(send, bounds) for bounds in pieces]
            for index, (future, (start, end)) in enumerate(zip(futures, pieces, strict=True)):
                piece = future.result()
                offset, limit = start / SAMPLE_RATE, end / SAMPLE_RATE
                for segment in piece.segments:
                    shifted = _shift(segment, offset, limit)
                    segments.append(shifted)
                    if on_segment is not None and shifted.text:
                        on_segment(shifted.start, shifted.end, shifted.text)
                if piece.language:
                    languages.append(piece.language)
                if on_progress is not None:
                    on_progress((index + 1) / len(pieces))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        detected = language or (max(set(languages), key=languages.count) if languages
                                else "en")
        return AsrOutput(segments=tuple(segments), language=detected)

    def _send(self, samples: np.ndarray, language: str | None, words: bool, task: str,
              prompt: str | None, temperature: float | None) -> _Piece:
        fields = [("model", self.engine.model),
                  ("response_format", self.engine.response_format)]
        if words:
            fields += [("timestamp_granularities[]", "word"),
                       ("timestamp_granularities[]", "segment")]
        if language and task != "translate":
            fields.append(("language", language))
        if prompt:
            fields.append(("prompt", prompt))
        if temperature is not None:
            fields.append(("temperature", f"{temperature:g}"))
        body, content_type = multipart(fields, "file", "audio.wav", to_wav(samples),
                                       "audio/wav")
        path = "/audio/translations" if task == "translate" else "/audio/transcriptions"
        duration = len(samples) / SAMPLE_RATE
        try:
            return self.caller.post(path, body, content_type,
                                    accept=lambda answer: parse_answer(answer, duration))
        except RemoteFailure as failure:
            raise engine_failure(self.pipeline, failure) from failure


def engine_failure(pipeline: Pipeline, failure: RemoteFailure) -> EngineFailed:
    """The job's error for a failed engine: which engine, what happened, what to do."""
    code, advice = _ADVICE[failure.kind]
    engine = pipeline.engine
    assert engine is not None
    tries = "" if not failure.retryable else f" (after {engine.retries + 1} tries)"
    return EngineFailed(
        f"The speech engine of pipeline '{pipeline.code}' ({engine.model} at "
        f"{engine.base_url}) failed{tries}: {failure.detail}. Nothing was charged; {advice}.",
        code=code)


def parse_answer(answer: Any, duration: float) -> _Piece:
    """An OpenAI transcription answer as segments (ValueError when it is not one)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise ValueError("no 'text' in it")
    raw_segments = answer.get("segments") or []
    if not isinstance(raw_segments, list):
        raise ValueError("'segments' is not a list")
    words = [_word(item) for item in answer.get("words") or []]
    spans: list[tuple[float, float, str, float]] = []
    for item in raw_segments:
        if not isinstance(item, dict):
            raise ValueError("a segment is not an object")
        spans.append((_seconds(item, "start"), _seconds(item, "end"),
                      str(item.get("text", "")).strip(),
                      _number(item.get("avg_logprob"), 0.0)))
        words += [_word(word) for word in item.get("words") or []]
    if not spans:
        spans = [(0.0, duration, answer["text"].strip(), 0.0)]
    words.sort(key=lambda word: word.start)
    placed: list[list[AsrWord]] = [[] for _ in spans]
    for word in words:
        placed[_segment_of(word, spans)].append(word)
    segments = [AsrSegment(start=start, end=end, text=text, avg_logprob=logprob,
                           words=tuple(placed[i]))
                for i, (start, end, text, logprob) in enumerate(spans)]
    return _Piece(segments=segments, language=_language(answer.get("language")))


def _segment_of(word: AsrWord, spans: list[tuple[float, float, str, float]]) -> int:
    """The segment a word falls in by its middle; else the last one starting before it."""
    middle = (word.start + word.end) / 2
    chosen = 0
    for index, (start, end, _, _) in enumerate(spans):
        if start <= middle <= end:
            return index
        if start <= middle:
            chosen = index
    return chosen


def _word(item: Any) -> AsrWord:
    if not isinstance(item, dict) or not isinstance(item.get("word"), str):
        raise ValueError("a word is not an object with 'word'")
    text = item["word"]
    return AsrWord(word=text.strip(), start=_seconds(item, "start"), end=_seconds(item, "end"),
                   probability=_number(item.get("probability"), 1.0))


def _seconds(item: dict[str, Any], key: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"'{key}' is not a number")
    return float(value)


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _language(value: Any) -> str | None:
    """ISO 639-1 from what the engine says: a code, or Whisper's name for it."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if value in ISO_639_1:
        return value
    return LANGUAGE_BY_NAME.get(value)


def _shift(segment: AsrSegment, offset: float, limit: float) -> AsrSegment:
    """A piece's segment in the file's times, clamped into the piece."""
    def at(seconds: float) -> float:
        return min(max(offset + seconds, offset), limit)
    return AsrSegment(start=at(segment.start), end=at(segment.end), text=segment.text,
                      avg_logprob=segment.avg_logprob,
                      words=tuple(AsrWord(w.word, at(w.start), at(w.end), w.probability,
                                          w.spaced) for w in segment.words))


def to_wav(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Float samples in [-1, 1] as a 16-bit mono WAV file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def multipart(fields: list[tuple[str, str]], file_field: str, filename: str, content: bytes,
              content_type: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of text fields and one file, and its Content-Type."""
    boundary = f"voxhook-{secrets.token_hex(12)}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
                 + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def engine_loader(settings: Settings, parallel_jobs: int = 1,
                  cpu_threads: int = 0) -> Callable[[Pipeline], Any]:
    """What the model cache calls to load a pipeline's engine: remote, or faster-whisper
    serving ``parallel_jobs`` concurrent jobs with ``cpu_threads`` threads each."""
    def load(pipeline: Pipeline) -> Any:
        if pipeline.engine is not None:
            return RemoteAsrEngine(pipeline, settings)
        from worker.speech.asr import AsrEngine

        return AsrEngine(pipeline, parallel_jobs=parallel_jobs, cpu_threads=cpu_threads)
    return load
