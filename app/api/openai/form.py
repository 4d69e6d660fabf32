"""OpenAI's multipart request fields, checked and turned into a transcription request.

The request creates an ordinary transcription (an upload of the file, the pipeline that
``model`` names, speaker labels for ``diarized_json``), plus engine options the other
surfaces do not have: Whisper's task, an initial prompt, a temperature, known speakers.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.datastructures import FileStorage

from app.api.errors import invalid_fields
from app.api.schemas.transcriptions import validate_language
from app.transcriptions.engine_options import EngineOptions, KnownSpeaker
from app.transcriptions.pipelines import Pipeline, PipelineCatalog

#: Formats of ``/v1/audio/transcriptions``; translations have all but ``diarized_json``.
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
TRANSLATION_FORMATS = TRANSCRIPTION_FORMATS[:-1]
#: OpenAI's model names. One that no pipeline claims as a code or alias means the default
#: pipeline; an operator sends it elsewhere by listing it as another pipeline's alias.
OPENAI_MODEL_NAMES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                      "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize",
                      "gpt-transcribe")
#: Up to this many known speakers (OpenAI's limit).
MAX_KNOWN_SPEAKERS = 4
#: The largest reference clip accepted, in bytes once decoded (10 s of 16-bit 48 kHz
#: stereo WAV is under 2 MB).
MAX_REFERENCE_BYTES = 2 * 1024 * 1024
_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)(;[\w-]+=[\w.-]+)*;base64,(?P<data>.*)",
                       re.DOTALL)


class _FormSchema(Schema):
    class Meta:
        unknown = RAISE  # like OpenAI: "Unrecognized request argument"

    model = fields.String(required=True, metadata={"description": (
        "A pipeline code or alias (GET /v1/models). OpenAI's names (whisper-1, "
        "gpt-4o-transcribe, …) mean the default pipeline unless a pipeline lists them "
        "as aliases.")})
    prompt = fields.String(validate=validate.Length(max=4000), metadata={
        "description": "Text the model reads as if it came before the audio (Whisper's "
        "initial prompt): names, spellings, style."})
    temperature = fields.Float(validate=validate.Range(min=0, max=1), metadata={
        "description": "Sampling temperature 0..1; left out, the pipeline's own decoding "
        "(with its temperature fallback)."})
    stream = fields.Boolean(load_default=False, metadata={"description": (
        "true: server-sent events, transcript.text.delta per segment as the worker "
        "decodes it, then transcript.text.done with the stored transcript.")})


class TranscriptionFormSchema(_FormSchema):
    """The fields of ``POST /v1/audio/transcriptions`` (besides ``file``)."""

    language = fields.String(validate=validate_language, metadata={
        "description": "ISO 639-1 code of the spoken language; left out, detected."})
    response_format = fields.String(load_default="json",
                                    validate=validate.OneOf(TRANSCRIPTION_FORMATS))
    timestamp_granularities = fields.List(
        fields.String(validate=validate.OneOf(("word", "segment"))),
        data_key="timestamp_granularities[]", load_default=list, metadata={
            "description": "With verbose_json: word adds words with times; segment "
            "(the default) gives segments."})
    known_speaker_names = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                      data_key="known_speaker_names[]", load_default=list)
    known_speaker_references = fields.List(fields.String(), data_key="known_speaker_references[]",
                                           load_default=list, metadata={
        "description": "data: URLs (base64) of 2 to 10 s clips, one per known speaker name, "
        "in the same order; with diarized_json the speakers whose voice is most like a "
        "clip get its name."})
    chunking_strategy = fields.String(metadata={
        "description": "Accepted for compatibility (\"auto\" or a server_vad object as "
        "JSON); the pipeline's voice activity detection decides the chunks."})
    include = fields.List(fields.String(), data_key="include[]", load_default=list, metadata={
        "description": "Accepted for compatibility; logprobs are not returned."})

    @validates_schema
    def _speakers(self, data: dict[str, Any], **_: Any) -> None:
        names = data.get("known_speaker_names") or []
        references = data.get("known_speaker_references") or []
        if len(names) != len(references):
            raise ValidationError(
                f"Give one known_speaker_references[] per known_speaker_names[] (got "
                f"{len(names)} names and {len(references)} references).",
                "known_speaker_references[]")
        if len(names) > MAX_KNOWN_SPEAKERS:
            raise ValidationError(f"At most {MAX_KNOWN_SPEAKERS} known speakers.",
                                  "known_speaker_names[]")
        if len(set(names)) != len(names):
            raise ValidationError("Each known speaker name must be different.",
                                  "known_speaker_names[]")
        if names and data.get("response_format") != "diarized_json":
            raise ValidationError("Known speakers need response_format=diarized_json.",
                                  "response_format")
        for reference in references:
            _check_data_url(reference)


class TranslationFormSchema(_FormSchema):
    """The fields of ``POST /v1/audio/translations`` (besides ``file``)."""

    response_format = fields.String(load_default="json",
                                    validate=validate.OneOf(TRANSLATION_FORMATS))


def _check_data_url(value: str) -> None:
    match = _DATA_URL.fullmatch(value.strip())
    if match is None or not match["type"].startswith(("audio/", "video/",
                                                      "application/octet-stream")):
        raise ValidationError("Each reference must be a data URL of an audio clip: "
                              "data:audio/wav;base64,….", "known_speaker_references[]")
    try:
        size = len(base64.b64decode(match["data"], validate=True))
    except (binascii.Error, ValueError):
        raise ValidationError("A reference's data is not valid base64.",
                              "known_speaker_references[]") from None
    if size > MAX_REFERENCE_BYTES:
        raise ValidationError(f"A reference clip is {size} bytes; the limit is "
                              f"{MAX_REFERENCE_BYTES} (2 to 10 s of audio).",
                              "known_speaker_references[]")


@dataclass(frozen=True)
class OpenAiRequest:
    """A checked request: the service's payload, the file, and how to answer."""

    payload: dict[str, Any]
    file: FileStorage
    response_format: str
    words: bool
    segments: bool
    stream: bool
    task: str


def read_request(schema: type[Schema], catalog: PipelineCatalog, task: str) -> OpenAiRequest:
    """The request's form, checked; a 400 naming the field otherwise."""
    if request.mimetype != "multipart/form-data":
        raise invalid_fields({"file": [
            "Send multipart/form-data with the audio as the part named 'file' (what OpenAI "
            "SDKs do)."]})
    parts = request.files.getlist("file")
    strays = {name: ["Unknown file part: send the audio as the part named 'file'."]
              for name in request.files if name != "file"}
    if not parts:
        strays["file"] = ["Missing: send the audio as a file part named 'file'."]
    elif len(parts) > 1:
        strays["file"] = ["Send one file per request."]
    if strays:
        raise invalid_fields(strays)
    try:
        data = schema().load(_form_values(schema))
    except ValidationError as error:
        raise invalid_fields(error.messages) from None
    pipeline = resolve_model(catalog, data["model"])
    response_format = data["response_format"]
    granularities = data.get("timestamp_granularities") or ["segment"]
    words = response_format == "verbose_json" and "word" in granularities
    diarize = response_format == "diarized_json"
    options = EngineOptions(
        task=task, prompt=data.get("prompt") or None, temperature=data.get("temperature"),
        known_speakers=tuple(KnownSpeaker(name, reference.strip()) for name, reference in zip(
            data.get("known_speaker_names") or [], data.get("known_speaker_references") or [],
            strict=True)))
    payload = {"source": "upload", "pipeline_code": pipeline.code,
               "language": data.get("language"), "diarize": diarize, "align": words or diarize,
               "engine_options": options.to_json()}
    if diarize and not pipeline.can_diarize:
        raise invalid_fields({"response_format": [
            f"Model '{data['model']}' (pipeline {pipeline.code}) cannot label speakers on "
            "this server: choose a model whose pipeline has can_diarize in GET "
            "/api/v1/pipelines, or another response_format."]})
    return OpenAiRequest(payload={k: v for k, v in payload.items() if v is not None},
                         file=parts[0], response_format=response_format, words=words,
                         segments="segment" in granularities, stream=data["stream"],
                         task=task)


def _form_values(schema: type[Schema]) -> dict[str, Any]:
    """Form fields as the schema's input: lists for ``[]`` fields (also accepted without
    the brackets); a plain field sent twice stays a list, which the schema refuses."""
    declared = schema().fields
    list_keys = {f.data_key for f in declared.values() if isinstance(f, fields.List)}
    values: dict[str, Any] = {}
    for name, items in request.form.lists():
        key = name if name in list_keys or f"{name}[]" not in list_keys else f"{name}[]"
        given = [item for item in items if item != ""]
        if key in list_keys:
            values.setdefault(key, []).extend(given)
        elif given:
            values[key] = given[0] if len(given) == 1 else given
    return values


def resolve_model(catalog: PipelineCatalog, model: str) -> Pipeline:
    """The pipeline ``model`` names (code or alias), or the default one for OpenAI's own
    model names; a 400 listing the models otherwise."""
    pipeline = catalog.find(model)
    if pipeline is None and model in OPENAI_MODEL_NAMES:
        pipeline = catalog.default
    if pipeline is None:
        raise invalid_fields({"model": [
            f"Unknown model '{model}'. Available: {', '.join(model_ids(catalog))} "
            "(GET /v1/models)."]})
    return pipeline


def model_ids(catalog: PipelineCatalog) -> list[str]:
    """Every model name a request may send: pipeline codes, aliases, OpenAI's names."""
    ids = catalog.codes()
    return ids + [name for name in OPENAI_MODEL_NAMES if name not in ids]
