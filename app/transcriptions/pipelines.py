"""Pipelines: the model configurations a client can choose between, read from a TOML file.

A pipeline names an ASR model, where and how it runs, how it decodes, and what a minute of
audio costs. The API reads the catalogue to validate ``pipeline_code`` and to list the
choices; the worker reads the same catalogue to know which models to load. Nothing here
imports the speech stack.

File format (``VOXHOOK_PIPELINES``)::

    default_pipeline = "whisper-large-v3"     # optional; else the first pipeline
    [[pipeline]]
    code = "whisper-large-v3"
    description = "Whisper large-v3 on the GPU"
    model = "large-v3"                       # model name or local CTranslate2 folder
    device = "auto"                          # auto | cuda | cpu
    compute_type = "auto"                    # auto | float16 | int8_float16 | int8 | float32
    price_per_minute_usd = "0.0060"          # a string: money is exact
    aliases = ["gpt-4o-transcribe-diarize"]
    languages = ["en", "de"]                 # optional; default every language it knows
    [pipeline.decoding]
    beam_size = 5
    temperature = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    vad_filter = true
    batch_size = 1                           # > 1: faster-whisper's batched pipeline
    max_new_tokens = 128                     # optional cap per 30 s window
    [pipeline.diarization]                   # optional: speaker labels (pyannote.audio 4)
    model = "pyannote/speaker-diarization-community-1"  # hub id (token: HF_TOKEN) or folder
    device = "auto"                          # default: the pipeline's device

A pipeline may instead send its audio to a remote engine speaking OpenAI's audio API
(``[pipeline.engine]``, no ``model`` nor ``[pipeline.decoding]`` then), and offer AI
analyses run by the file's ``[analysis]`` chat endpoint (``analyses = [...]``,
``price_per_analysis_usd``): see :mod:`app.transcriptions.remote_config`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from app.config import COMPUTE_TYPES, ConfigError, Settings
from app.errors import ValidationFailed
from app.transcriptions.languages import ISO_639_1, WHISPER_LANGUAGES
from app.transcriptions.remote_config import (
    AnalysisEndpoint,
    RemoteEngine,
    parse_analysis,
    parse_engine,
    parse_offered_analyses,
)

DEVICES = ("auto", "cuda", "cpu")

#: The model of the built-in pipeline: small enough for a laptop's CPU, multilingual.
DEFAULT_MODEL = "base"
#: Codes of the hosted service, mapped onto the built-in pipeline so its scripts run unchanged.
HOSTED_ALIASES = (
    "gpt-4o-transcribe-diarize", "qwen3-asr-flash-filetrans", "voxtral-mini-transcribe",
)


@dataclass(frozen=True)
class DecodingOptions:
    """How faster-whisper decodes; the fields mirror its ``transcribe`` arguments."""

    beam_size: int = 5
    #: One temperature, or the fallback ladder tried when a window decodes badly.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    #: Skip silence with the Silero VAD that ships inside faster-whisper.
    vad_filter: bool = True
    #: Above 1, windows are decoded in batches (faster on a GPU, same words).
    batch_size: int = 1
    #: Cap on tokens per 30 s window; None leaves faster-whisper's own limit.
    max_new_tokens: int | None = None
    condition_on_previous_text: bool = True


@dataclass(frozen=True)
class DiarizationConfig:
    """Which pyannote.audio speaker-diarization pipeline labels speakers, and where it runs."""

    #: A local folder in pyannote's format (``config.yaml`` and its model folders), or a
    #: model hub id, downloaded once with the token in ``HF_TOKEN``.
    model: str
    #: auto | cuda | cpu; ``auto`` is the GPU when torch sees one.
    device: str = "auto"


@dataclass(frozen=True)
class Pipeline:
    """One model configuration a client can choose with ``pipeline_code``."""

    code: str
    description: str
    model: str
    device: str = "auto"
    compute_type: str = "auto"
    price_per_minute_usd: Decimal = Decimal("0.0040")
    aliases: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    decoding: DecodingOptions = field(default_factory=DecodingOptions)
    #: Speaker labelling; None: this pipeline cannot diarize.
    diarization: DiarizationConfig | None = None
    #: A remote engine (OpenAI's audio API) instead of the local faster-whisper model.
    engine: RemoteEngine | None = None
    #: The analyses a request may ask for (names in the catalogue's ``analysis``).
    analyses: tuple[str, ...] = ()
    #: Charged per analysis that completes, on top of the audio; 0: the price a minute
    #: covers analyses.
    price_per_analysis_usd: Decimal = Decimal(0)

    @property
    def can_diarize(self) -> bool:
        return self.diarization is not None

    @property
    def engine_kind(self) -> str:
        """``faster-whisper`` (local) or ``openai-compatible`` (remote)."""
        return self.engine.kind if self.engine is not None else "faster-whisper"

    @property
    def gives_words(self) -> bool:
        """Whether results carry word timings (a remote engine may not give them)."""
        return self.engine is None or self.engine.words

    def listing(self, default_code: str) -> dict[str, Any]:
        """What ``GET /api/v1/pipelines`` says of this pipeline, so clients can choose."""
        return {**self.__dict__, "can_diarize": self.can_diarize,
                "default": self.code == default_code,
                "engine": {"kind": self.engine_kind, "model": self.model},
                "capabilities": {"words": self.gives_words, "speakers": self.can_diarize,
                                 "languages": list(self.languages),
                                 "analysis": list(self.analyses)}}

    @property
    def price_per_minute_micro_usd(self) -> Decimal:
        """The price in micro-dollars a minute (exact; may have a fraction)."""
        return self.price_per_minute_usd * 1_000_000


@dataclass(frozen=True)
class PipelineCatalog:
    """The configured pipelines and the code used when a request names none."""

    pipelines: tuple[Pipeline, ...]
    default_code: str
    #: The chat endpoint and the analyses it runs; None: no pipeline offers analysis.
    analysis: AnalysisEndpoint | None = None

    def codes(self) -> list[str]:
        """Every code a request may name: pipeline codes, then aliases."""
        own = [p.code for p in self.pipelines]
        return own + [alias for p in self.pipelines for alias in p.aliases]

    def find(self, code: str | None) -> Pipeline | None:
        """The pipeline a code (or alias) names; the default one for None; else None."""
        wanted = code or self.default_code
        for pipeline in self.pipelines:
            if wanted == pipeline.code or wanted in pipeline.aliases:
                return pipeline
        return None

    @property
    def default(self) -> Pipeline:
        pipeline = self.find(self.default_code)
        assert pipeline is not None  # guaranteed by load_catalog
        return pipeline


def load_catalog(settings: Settings) -> PipelineCatalog:
    """Read the pipelines file named by the settings, or build the single built-in pipeline."""
    if settings.pipelines_path is None:
        return _builtin_catalog(settings)
    path = settings.pipelines_path
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"VOXHOOK_PIPELINES names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_catalog(document, settings, source=str(path))


def parse_catalog(document: dict[str, Any], settings: Settings, source: str) -> PipelineCatalog:
    """Build a catalogue from a parsed TOML document; every mistake names its place."""
    entries = document.get("pipeline")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: declare at least one [[pipeline]] table")
    analysis = (parse_analysis(document["analysis"], f"{source}: [analysis]")
                if "analysis" in document else None)
    pipelines = tuple(
        _parse_pipeline(entry, settings, f"{source}: pipeline #{index + 1}", analysis)
        for index, entry in enumerate(entries)
    )
    _check_unique(pipelines, source)
    default_code = document.get("default_pipeline") or pipelines[0].code
    catalog = PipelineCatalog(pipelines=pipelines, default_code=default_code,
                              analysis=analysis)
    if catalog.find(default_code) is None:
        raise ConfigError(f"{source}: default_pipeline {default_code!r} names no pipeline")
    return catalog


def _builtin_catalog(settings: Settings) -> PipelineCatalog:
    model = settings.model_override or DEFAULT_MODEL
    pipeline = Pipeline(
        code="default",
        description=f"faster-whisper '{model}': transcription in 99 languages with word timings",
        model=model,
        device=settings.default_device,
        compute_type=settings.default_compute_type,
        aliases=HOSTED_ALIASES,
        languages=default_languages(model),
        diarization=(DiarizationConfig(model=settings.diarization_model,
                                       device=settings.default_device)
                     if settings.diarization_model else None),
    )
    return PipelineCatalog(pipelines=(pipeline,), default_code=pipeline.code)


def default_languages(model: str) -> tuple[str, ...]:
    """Languages a Whisper model knows: English alone for the ``.en`` models."""
    return ("en",) if model.endswith(".en") else WHISPER_LANGUAGES


_PIPELINE_KEYS = {
    "code", "description", "model", "device", "compute_type", "price_per_minute_usd",
    "aliases", "languages", "decoding", "diarization", "engine", "analyses",
    "price_per_analysis_usd",
}
_DIARIZATION_KEYS = {"model", "device"}
_DECODING_KEYS = {
    "beam_size", "temperature", "vad_filter", "batch_size", "max_new_tokens",
    "condition_on_previous_text",
}


def _parse_pipeline(entry: Any, settings: Settings, where: str,
                    analysis: AnalysisEndpoint | None = None) -> Pipeline:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    _reject_unknown(entry, _PIPELINE_KEYS, where)
    code = _required_str(entry, "code", where)
    where = f"{where} ({code})"
    engine = (parse_engine(entry["engine"], f"{where} [engine]")
              if "engine" in entry else None)
    if engine is not None and ("model" in entry or "decoding" in entry):
        raise ConfigError(f"{where}: a pipeline with a remote [pipeline.engine] names its "
                          "model in that table and has no [pipeline.decoding]; drop them here")
    model = engine.model if engine is not None else _required_str(entry, "model", where)
    device = str(entry.get("device", settings.default_device))
    if device not in DEVICES:
        raise ConfigError(f"{where}: device must be one of {', '.join(DEVICES)}, not {device!r}")
    compute_type = str(entry.get("compute_type", settings.default_compute_type))
    if compute_type not in COMPUTE_TYPES:
        raise ConfigError(
            f"{where}: compute_type must be one of {', '.join(COMPUTE_TYPES)}, not {compute_type!r}"
        )
    languages = _str_list(entry, "languages", where) or default_languages(model)
    unknown = [code for code in languages if code not in ISO_639_1]
    if unknown:
        raise ConfigError(f"{where}: languages must be ISO 639-1 codes; not {', '.join(unknown)}")
    return Pipeline(
        code=code,
        description=str(entry.get("description") or (
            f"{model} at {engine.host}" if engine else f"faster-whisper '{model}'")),
        model=model,
        device=device,
        compute_type=compute_type,
        price_per_minute_usd=_price(entry.get("price_per_minute_usd", "0.0040"), where),
        price_per_analysis_usd=_price(entry.get("price_per_analysis_usd", "0"), where,
                                      "price_per_analysis_usd"),
        engine=engine,
        analyses=parse_offered_analyses(entry, analysis, where),
        aliases=_str_list(entry, "aliases", where),
        languages=languages,
        decoding=_parse_decoding(entry.get("decoding", {}), f"{where} [decoding]"),
        diarization=_parse_diarization(entry.get("diarization"), device,
                                       f"{where} [diarization]"),
    )


def _parse_diarization(table: Any, pipeline_device: str, where: str) -> DiarizationConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _reject_unknown(table, _DIARIZATION_KEYS, where)
    model = _required_str(table, "model", where)
    device = str(table.get("device", pipeline_device))
    if device not in DEVICES:
        raise ConfigError(f"{where}: device must be one of {', '.join(DEVICES)}, not {device!r}")
    return DiarizationConfig(model=model, device=device)


def _parse_decoding(table: Any, where: str) -> DecodingOptions:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _reject_unknown(table, _DECODING_KEYS, where)
    defaults = DecodingOptions()
    temperature = table.get("temperature", defaults.temperature)
    ladder = temperature if isinstance(temperature, list | tuple) else [temperature]
    if not ladder or any(isinstance(t, bool) or not isinstance(t, int | float)
                         or not 0.0 <= t <= 1.0 for t in ladder):
        raise ConfigError(f"{where}: temperature must be one number or a list of numbers, "
                          "each in [0, 1]")
    temperatures = tuple(float(t) for t in ladder)
    beam_size = _positive_int(table, "beam_size", defaults.beam_size, where)
    batch_size = _positive_int(table, "batch_size", defaults.batch_size, where)
    max_new_tokens = (_positive_int(table, "max_new_tokens", 1, where)
                      if table.get("max_new_tokens") is not None else None)
    return DecodingOptions(
        beam_size=beam_size,
        temperature=temperatures,
        vad_filter=bool(table.get("vad_filter", defaults.vad_filter)),
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        condition_on_previous_text=bool(
            table.get("condition_on_previous_text", defaults.condition_on_previous_text)
        ),
    )


def _price(raw: Any, where: str, key: str = "price_per_minute_usd") -> Decimal:
    if isinstance(raw, float):
        raise ConfigError(
            f"{where}: write {key} as a string (\"{raw}\") so it stays exact"
        )
    try:
        price = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: {key} {raw!r} is not a number") from None
    if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.000001")):
        raise ConfigError(
            f"{where}: {key} must be >= 0 with at most 6 decimals, not {raw!r}"
        )
    return price


def _positive_int(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key} must be a whole number >= 1, not {value!r}")
    return value


def _str_list(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key} must be a list of non-empty strings, like [\"a\"]")
    return tuple(value)


def _required_str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' is required and must be a non-empty string")
    return value.strip()


def _reject_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _check_unique(pipelines: Iterable[Pipeline], source: str) -> None:
    seen: set[str] = set()
    for pipeline in pipelines:
        for code in (pipeline.code, *pipeline.aliases):
            if code in seen:
                raise ConfigError(f"{source}: the code {code!r} is used twice")
            seen.add(code)


def resolve_pipeline(catalog: PipelineCatalog, code: str | None) -> Pipeline:
    """The pipeline a request names (or the default); a 422 listing the codes otherwise."""
    pipeline = catalog.find(code)
    if pipeline is None:
        available = catalog.codes()
        raise ValidationFailed(
            f"Unknown pipeline_code '{code}'. Available: {', '.join(available)}.",
            fields={"pipeline_code": [f"Unknown; choose one of: {', '.join(available)}."]},
            available_pipeline_codes=available)
    return pipeline


def check_capabilities(pipeline: Pipeline, payload: dict[str, Any]) -> None:
    """Refuse what the chosen pipeline cannot do, naming the field and the way out."""
    language = payload.get("language")
    if language and language != "auto" and language not in pipeline.languages:
        raise ValidationFailed(
            f"Pipeline '{pipeline.code}' does not know the language '{language}'.",
            fields={"language": [f"Not supported by pipeline '{pipeline.code}'; see "
                                 "GET /api/v1/pipelines for its languages, or omit it."]})
    asked = payload.get("analysis") or []
    unknown = [name for name in asked if name not in pipeline.analyses]
    if unknown:
        offered = ", ".join(pipeline.analyses) or "none"
        raise ValidationFailed(
            f"Pipeline '{pipeline.code}' does not offer the analysis "
            f"{', '.join(map(repr, unknown))}.",
            fields={"analysis": [f"Not offered by pipeline '{pipeline.code}' (it offers: "
                                 f"{offered}); see GET /api/v1/pipelines."]})
    if payload.get("diarize") and not pipeline.can_diarize:
        raise ValidationFailed(
            f"Pipeline '{pipeline.code}' cannot label speakers on this server.",
            fields={"diarize": ["This pipeline has no diarization model configured: send "
                                "diarize: false, or choose a pipeline with can_diarize in "
                                "GET /api/v1/pipelines."]})
