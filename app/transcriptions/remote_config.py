"""The pipelines file's remote services: a speech engine that speaks OpenAI's audio API, and
the chat endpoint that runs AI analyses. Parsing and the values it yields; no HTTP here.

A pipeline's ``[pipeline.engine]`` table sends its audio to a server speaking OpenAI's
``POST /v1/audio/transcriptions`` (vLLM serving Voxtral, Qwen3-ASR or Whisper; speaches;
another Voxhook; OpenAI) instead of a local faster-whisper model::

    [pipeline.engine]
    base_url = "http://vllm.internal:8000/v1"   # the path before /audio/transcriptions
    model = "mistralai/Voxtral-Mini-3B-2507"
    api_key_env = "VLLM_API_KEY"        # optional: the variable holding the key
    response_format = "verbose_json"    # or "json": text only (vLLM's Voxtral, Qwen3-ASR)
    words = true                        # ask for word timings (the engine may not give them)
    max_piece_seconds = 30              # longest piece the engine accepts (default 600)
    timeout_s = 300                     # per request
    connect_timeout_s = 10
    retries = 3                         # after the first try, with back-off
    backoff_s = 1.0                     # first delay; doubles each retry
    concurrency = 2                     # requests in flight at once, per worker process
    allow_private_network = false       # true: the operator allowlists this engine's host

The file's one ``[analysis]`` table names the chat endpoint and its analyses; pipelines offer
them (``analyses`` and ``price_per_analysis_usd`` in ``[[pipeline]]``)::

    [analysis]
    base_url = "http://ollama.internal:11434/v1"
    model = "qwen2.5:7b-instruct"
    api_key_env = "OLLAMA_API_KEY"      # optional
    structured_output = "json_schema"   # json_schema | json_object | none
    context_tokens = 8192               # the model's context window
    max_output_tokens = 1024
    timeout_s = 120
    retries = 2
    [analysis.analyses.risks]           # another analysis, or a default replaced
    description = "Risks raised"
    prompt = "List the risks raised in the meeting."
    schema = '{"type": "object", "properties": {...}, "required": [...]}'  # or a table

Each mistake is a :class:`ConfigError` naming its place, like the rest of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from app.config import ConfigError
from app.transcriptions.analysis_catalog import AnalysisDefinition, default_analyses

#: How remote services answer structured output: OpenAI's ``json_schema`` (vLLM, Ollama,
#: llama.cpp and OpenAI all accept it), ``json_object`` (JSON of any shape; the schema goes
#: in the prompt), or ``none`` (plain text that must hold the JSON).
STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class RemoteService:
    """Where an OpenAI-compatible service is and how it is called."""

    #: The API root, e.g. ``http://vllm:8000/v1``; paths such as ``/audio/transcriptions``
    #: are appended to it.
    base_url: str
    model: str
    #: The environment variable holding the bearer key (None: no key is sent).
    api_key_env: str | None = None
    connect_timeout_s: float = 10.0
    #: The most one request may take, answer included.
    timeout_s: float = 300.0
    #: Tries after the first one for failures that may pass (down, 429, 5xx, timeout,
    #: malformed answer), with exponential back-off.
    retries: int = 3
    backoff_s: float = 1.0
    #: Requests in flight at once to this service, per worker process.
    concurrency: int = 2
    #: The operator allowlists this host: private and loopback addresses are allowed.
    allow_private_network: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


@dataclass(frozen=True)
class RemoteEngine(RemoteService):
    """A speech engine speaking OpenAI's ``/audio/transcriptions``."""

    #: ``verbose_json`` (segments and words with times) or ``json`` (text alone: each piece
    #: becomes one utterance; for servers that answer nothing else, as vLLM may for speech
    #: LLMs).
    response_format: str = "verbose_json"
    #: Ask for word timings (``timestamp_granularities[]=word``); an engine that gives none
    #: still works: utterances then carry no words.
    words: bool = True
    #: The longest piece sent at once: longer audio is cut at silences into pieces at most
    #: this long, and their results stitched back with continuous times.
    max_piece_seconds: float = 600.0

    kind = "openai-compatible"


@dataclass(frozen=True)
class AnalysisEndpoint(RemoteService):
    """The chat endpoint (``/chat/completions``) that runs analyses, and the analyses."""

    timeout_s: float = 120.0
    retries: int = 2
    structured_output: str = "json_schema"
    #: The model's context window in tokens: a longer transcript is analysed in parts
    #: that fit, whose answers are merged.
    context_tokens: int = 8192
    max_output_tokens: int = 1024
    temperature: float = 0.0
    definitions: dict[str, AnalysisDefinition] = field(default_factory=default_analyses)


_SERVICE_KEYS = {"base_url", "model", "api_key_env", "connect_timeout_s", "timeout_s",
                 "retries", "backoff_s", "concurrency", "allow_private_network"}
_ENGINE_KEYS = _SERVICE_KEYS | {"words", "max_piece_seconds", "response_format"}
#: What a remote engine may be asked to answer.
ENGINE_RESPONSE_FORMATS = ("verbose_json", "json")
_ANALYSIS_KEYS = _SERVICE_KEYS | {"structured_output", "context_tokens", "max_output_tokens",
                                  "temperature", "analyses"}
_DEFINITION_KEYS = {"prompt", "schema", "description"}


def parse_engine(table: Any, where: str) -> RemoteEngine:
    """A pipeline's ``[pipeline.engine]`` table."""
    table = _table(table, _ENGINE_KEYS, where)
    response_format = _choice(table, "response_format", ENGINE_RESPONSE_FORMATS, where)
    words = table.get("words", response_format == "verbose_json")
    if not isinstance(words, bool):
        raise ConfigError(f"{where}: words must be true or false, not {words!r}")
    if words and response_format == "json":
        raise ConfigError(f"{where}: response_format \"json\" carries no word timings; set "
                          "words = false, or use \"verbose_json\"")
    return RemoteEngine(
        **_service_fields(table, where, RemoteEngine),
        response_format=response_format,
        words=words,
        max_piece_seconds=_number(table, "max_piece_seconds", 600.0, where, minimum=5.0),
    )


def parse_analysis(table: Any, where: str) -> AnalysisEndpoint:
    """The file's ``[analysis]`` table."""
    table = _table(table, _ANALYSIS_KEYS, where)
    mode = _choice(table, "structured_output", STRUCTURED_OUTPUT_MODES, where)
    definitions = default_analyses()
    extra = table.get("analyses", {})
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}: analyses must be tables, like [analysis.analyses.risks]")
    for name, entry in extra.items():
        definitions[name] = _parse_definition(name, entry, definitions.get(name),
                                              f"{where} [analysis.analyses.{name}]")
    context_tokens = _whole(table, "context_tokens", 8192, where, minimum=512)
    max_output = _whole(table, "max_output_tokens", 1024, where, minimum=16)
    if max_output * 2 > context_tokens:
        raise ConfigError(f"{where}: max_output_tokens ({max_output}) must be at most half of "
                          f"context_tokens ({context_tokens}), to leave room for the transcript")
    return AnalysisEndpoint(
        **_service_fields(table, where, AnalysisEndpoint),
        structured_output=mode, context_tokens=context_tokens, max_output_tokens=max_output,
        temperature=_number(table, "temperature", 0.0, where, minimum=0.0, maximum=2.0),
        definitions=definitions,
    )


def parse_offered_analyses(entry: dict[str, Any], endpoint: AnalysisEndpoint | None,
                           where: str) -> tuple[str, ...]:
    """The analyses a pipeline offers: its ``analyses`` list, by default all of them."""
    if "analyses" not in entry:
        return tuple(endpoint.definitions) if endpoint is not None else ()
    names = entry["analyses"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}: analyses must be a list of analysis names, like "
                          "[\"summary\"]")
    if names and endpoint is None:
        raise ConfigError(f"{where}: analyses need an [analysis] table naming the chat "
                          "endpoint that runs them")
    unknown = [name for name in names if endpoint is None or name not in endpoint.definitions]
    if unknown:
        known = ", ".join(endpoint.definitions) if endpoint else ""
        raise ConfigError(f"{where}: unknown analysis {', '.join(unknown)}; known: {known} "
                          "(add others under [analysis.analyses.NAME])")
    return tuple(dict.fromkeys(names))


def _parse_definition(name: str, entry: Any, default: AnalysisDefinition | None,
                      where: str) -> AnalysisDefinition:
    entry = _table(entry, _DEFINITION_KEYS, where)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}: an analysis name is letters, digits, '_' and '-'")
    prompt = entry.get("prompt", default.prompt if default else None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(f"{where}: 'prompt' is required and must be a non-empty string")
    schema = entry.get("schema", default.schema if default else None)
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: schema is not valid JSON ({exc})") from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ConfigError(f"{where}: schema must be a JSON schema whose type is \"object\" "
                          "(a TOML table or a JSON string)")
    _check_schema(schema, where)
    return AnalysisDefinition(name=name, prompt=prompt.strip(), schema=schema,
                              description=str(entry.get("description")
                                              or (default.description if default else "")))


def _check_schema(schema: dict[str, Any], where: str) -> None:
    """The schema must itself be valid (jsonschema is loaded lazily: the API's import of
    this module stays light)."""
    try:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError
    except ImportError:  # pragma: no cover - jsonschema is a dependency
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"{where}: schema is not a valid JSON schema ({exc.message})") from None


def _service_fields(table: dict[str, Any], where: str, kind: type[RemoteService]
                    ) -> dict[str, Any]:
    defaults = kind(base_url="", model="")
    base_url = table.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigError(f"{where}: 'base_url' is required, like \"http://vllm:8000/v1\"")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: base_url must be an http or https URL with a host, not "
                          f"{base_url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}: base_url must not have a query or fragment")
    model = table.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{where}: 'model' is required: the model name the server serves")
    api_key_env = table.get("api_key_env")
    if api_key_env is not None and (not isinstance(api_key_env, str)
                                    or not api_key_env.replace("_", "").isalnum()):
        raise ConfigError(f"{where}: api_key_env names an environment variable (letters, "
                          f"digits, '_'), not {api_key_env!r}; never put the key itself here")
    private = table.get("allow_private_network", False)
    if not isinstance(private, bool):
        raise ConfigError(f"{where}: allow_private_network must be true or false")
    return {
        "base_url": base_url.strip().rstrip("/"), "model": model.strip(),
        "api_key_env": api_key_env,
        "connect_timeout_s": _number(table, "connect_timeout_s", defaults.connect_timeout_s,
                                     where),
        "timeout_s": _number(table, "timeout_s", defaults.timeout_s, where),
        "retries": _whole(table, "retries", defaults.retries, where, minimum=0, maximum=10),
        "backoff_s": _number(table, "backoff_s", defaults.backoff_s, where, minimum=0.0),
        "concurrency": _whole(table, "concurrency", defaults.concurrency, where, maximum=64),
        "allow_private_network": private,
    }


def _table(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return table


def _choice(table: dict[str, Any], key: str, choices: tuple[str, ...], where: str) -> str:
    """One of ``choices`` (the first is the default)."""
    value = table.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _number(table: dict[str, Any], key: str, default: float, where: str,
            minimum: float = 0.001, maximum: float = 86_400.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            minimum <= value <= maximum):
        raise ConfigError(f"{where}: {key} must be a number from {minimum:g} to {maximum:g}, "
                          f"not {value!r}")
    return float(value)


def _whole(table: dict[str, Any], key: str, default: int, where: str, minimum: int = 1,
           maximum: int = 1_000_000) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(f"{where}: {key} must be a whole number from {minimum} to "
                          f"{maximum}, not {value!r}")
    return value
