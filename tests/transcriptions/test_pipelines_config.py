"""``app.transcriptions.pipelines.load_catalog`` and ``Settings.from_env``: the built-in
pipeline, pipelines files, and a ConfigError that names the place of every mistake."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from app.config import ConfigError, FetchLimits, Settings
from app.transcriptions.languages import WHISPER_LANGUAGES
from app.transcriptions.pipelines import (
    DEFAULT_MODEL,
    HOSTED_ALIASES,
    DecodingOptions,
    DiarizationConfig,
    PipelineCatalog,
    load_catalog,
)
from tests.support.paths import REPO

TWO_PIPELINES = '''
default_pipeline = "small-cpu"

[[pipeline]]
code = "large-gpu"
description = "Whisper large-v3 on the GPU"
model = "large-v3"
device = "cuda"
compute_type = "float16"
price_per_minute_usd = "0.0060"
aliases = ["gpt-4o-transcribe-diarize"]
[pipeline.decoding]
beam_size = 5
temperature = [0.0, 0.2, 0.4]
batch_size = 8

[[pipeline]]
code = "small-cpu"
model = "small.en"
device = "cpu"
compute_type = "int8"
price_per_minute_usd = "0.0285"
aliases = ["qwen3-asr-flash-filetrans", "voxtral-mini-transcribe"]
[pipeline.decoding]
beam_size = 1
temperature = 0.0
vad_filter = false
max_new_tokens = 48
'''

#: A valid one-pipeline file; the mistakes below are spliced into it.
BASE = '''
[[pipeline]]
code = "first"
model = "base"
{first}

[[pipeline]]
code = "second"
model = "tiny"
{second}
'''


def catalog_from(tmp_path: Path, text: str, **env: str) -> PipelineCatalog:
    """Write ``text`` as a pipelines file and load it through Settings.from_env."""
    path = tmp_path / "pipelines.toml"
    path.write_text(text)
    return load_catalog(Settings.from_env({"VOXHOOK_PIPELINES": str(path), **env}))


def test_no_file_gives_the_builtin_pipeline_with_hosted_aliases() -> None:
    """Without VOXHOOK_PIPELINES there is one default pipeline answering the hosted codes."""
    catalog = load_catalog(Settings.from_env({}))
    (pipeline,) = catalog.pipelines
    assert catalog.default is pipeline and catalog.default_code == "default"
    assert pipeline.model == DEFAULT_MODEL
    assert (pipeline.device, pipeline.compute_type) == ("auto", "auto")
    assert pipeline.aliases == HOSTED_ALIASES
    for alias in HOSTED_ALIASES:
        assert catalog.find(alias) is pipeline
    assert catalog.find(None) is pipeline
    assert catalog.find("nope") is None
    assert catalog.codes() == ["default", *HOSTED_ALIASES]
    assert pipeline.languages == WHISPER_LANGUAGES
    assert pipeline.price_per_minute_usd == Decimal("0.0040")
    assert pipeline.decoding == DecodingOptions()


def test_diarization_is_configured_per_pipeline(tmp_path: Path) -> None:
    """A [pipeline.diarization] table makes a pipeline diarize; its device defaults to the
    pipeline's. Pipelines without one cannot diarize."""
    catalog = catalog_from(tmp_path, BASE.format(
        first='device = "cpu"\n[pipeline.diarization]\nmodel = "/models/community-1"',
        second='[pipeline.diarization]\nmodel = "pyannote/speaker-diarization-community-1"\n'
               'device = "cuda"'))
    first, second = catalog.pipelines
    assert first.can_diarize and first.diarization == DiarizationConfig("/models/community-1",
                                                                        "cpu")
    assert second.diarization == DiarizationConfig(
        "pyannote/speaker-diarization-community-1", "cuda")
    plain = catalog_from(tmp_path, BASE.format(first="", second="")).pipelines[0]
    assert not plain.can_diarize and plain.diarization is None


def test_builtin_pipeline_diarizes_with_voxhook_diarization_model() -> None:
    """The built-in pipeline labels speakers once VOXHOOK_DIARIZATION_MODEL names a model;
    HF_TOKEN is read for hub downloads and never shown in the settings' repr."""
    assert not load_catalog(Settings.from_env({})).default.can_diarize
    settings = Settings.from_env({"VOXHOOK_DIARIZATION_MODEL": "/models/community-1",
                                  "VOXHOOK_DEVICE": "cpu", "HF_TOKEN": "hf_secret_value"})
    assert load_catalog(settings).default.diarization == DiarizationConfig(
        "/models/community-1", "cpu")
    assert settings.hf_token == "hf_secret_value"
    assert "hf_secret_value" not in repr(settings)
    assert settings.environment()["HF_TOKEN"] == "hf_secret_value"  # children need it


def test_voxhook_model_overrides_the_builtin_model(tmp_path: Path) -> None:
    """VOXHOOK_MODEL (and VOXHOOK_DEVICE / COMPUTE_TYPE) reach the built-in pipeline."""
    catalog = load_catalog(Settings.from_env({
        "VOXHOOK_MODEL": str(tmp_path / "my-model"), "VOXHOOK_DEVICE": "CPU",
        "VOXHOOK_COMPUTE_TYPE": "int8"}))
    assert catalog.default.model == str(tmp_path / "my-model")
    assert str(tmp_path / "my-model") in catalog.default.description
    assert (catalog.default.device, catalog.default.compute_type) == ("cpu", "int8")
    english = load_catalog(Settings.from_env({"VOXHOOK_MODEL": "medium.en"})).default
    assert english.model == "medium.en" and english.languages == ("en",)


def test_file_with_two_pipelines(tmp_path: Path) -> None:
    """Both pipelines load with their settings; codes and aliases find them; the default is
    the one default_pipeline names, not the first."""
    catalog = catalog_from(tmp_path, TWO_PIPELINES)
    large, small = catalog.pipelines
    assert catalog.default is small and catalog.find(None) is small
    assert catalog.find("large-gpu") is large
    assert catalog.find("gpt-4o-transcribe-diarize") is large
    assert catalog.find("qwen3-asr-flash-filetrans") is small
    assert catalog.find("voxtral-mini-transcribe") is small
    assert catalog.find("default") is None
    assert catalog.codes() == ["large-gpu", "small-cpu", "gpt-4o-transcribe-diarize",
                               "qwen3-asr-flash-filetrans", "voxtral-mini-transcribe"]
    assert (large.device, large.compute_type, large.model) == ("cuda", "float16", "large-v3")
    assert large.price_per_minute_usd == Decimal("0.0060")
    assert large.price_per_minute_micro_usd == Decimal(6000)
    assert large.decoding == DecodingOptions(beam_size=5, temperature=(0.0, 0.2, 0.4),
                                             batch_size=8)
    assert small.description == "faster-whisper 'small.en'"
    assert small.languages == ("en",)
    assert small.price_per_minute_usd == Decimal("0.0285")
    assert small.decoding == DecodingOptions(beam_size=1, temperature=(0.0,), vad_filter=False,
                                             max_new_tokens=48)


def test_default_is_the_first_pipeline_when_unnamed(tmp_path: Path) -> None:
    """Without default_pipeline the first pipeline is the default."""
    catalog = catalog_from(tmp_path, BASE.format(first="", second=""))
    assert catalog.default.code == "first"


@pytest.mark.parametrize(("first", "second", "place", "words"), [
    ('colour = "blue"', "", "pipeline #1:", ["unknown key", "colour", "allowed: aliases"]),
    ("", "[pipeline.decoding]\nbeams = 3", "pipeline #2 (second) [decoding]",
     ["unknown key", "beams"]),
    ("price_per_minute_usd = 0.006", "", "pipeline #1 (first)",
     ["as a string", "price_per_minute_usd"]),
    ('price_per_minute_usd = "-1"', "", "pipeline #1 (first)", ["price_per_minute_usd"]),
    ('price_per_minute_usd = "0.0000001"', "", "pipeline #1 (first)", ["6 decimals"]),
    ('price_per_minute_usd = "cheap"', "", "pipeline #1 (first)", ["not a number"]),
    ('aliases = ["second"]', "", "", ["'second'", "used twice"]),
    ('aliases = ["x"]', 'aliases = ["x"]', "", ["'x'", "used twice"]),
    ('device = "tpu"', "", "pipeline #1 (first)", ["device", "'tpu'"]),
    ("", 'compute_type = "fp8"', "pipeline #2 (second)", ["compute_type", "'fp8'"]),
    ('languages = ["en", "english", "xx"]', "", "pipeline #1 (first)",
     ["ISO 639-1", "english", "xx"]),
    ("", "[pipeline.decoding]\ntemperature = 1.5", "pipeline #2 (second) [decoding]",
     ["temperature"]),
    ("", "[pipeline.decoding]\nbeam_size = 0", "pipeline #2 (second) [decoding]",
     ["beam_size"]),
    ("", "decoding = 5", "pipeline #2 (second) [decoding]", ["must be a table"]),
    ("[pipeline.diarization]\ndevice = \"cpu\"", "", "pipeline #1 (first) [diarization]",
     ["'model' is required"]),
    ("[pipeline.diarization]\nmodel = \"x\"\ndevice = \"gpu\"", "",
     "pipeline #1 (first) [diarization]", ["device", "'gpu'"]),
    ("[pipeline.diarization]\nmodel = \"x\"\ntoken = \"hf_secret\"", "",
     "pipeline #1 (first) [diarization]", ["unknown key(s) token"]),
    ("", "diarization = \"pyannote\"", "pipeline #2 (second) [diarization]",
     ["must be a table"]),
])
def test_each_mistake_names_its_place(tmp_path: Path, first: str, second: str, place: str,
                                      words: list[str]) -> None:
    """A mistake in a pipeline raises ConfigError naming the file, the pipeline and the key."""
    with pytest.raises(ConfigError) as caught:
        catalog_from(tmp_path, BASE.format(first=first, second=second))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "pipelines.toml") + ":")
    assert place in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(("text", "words"), [
    ('[[pipeline]]\ncode = "a"\n', ["pipeline #1 (a)", "'model' is required"]),
    ('[[pipeline]]\ncode = "a"\nmodel = "  "\n', ["pipeline #1 (a)", "'model' is required"]),
    ('[[pipeline]]\nmodel = "base"\n', ["pipeline #1", "'code' is required"]),
    ('default_pipeline = "ghost"\n[[pipeline]]\ncode = "a"\nmodel = "base"\n',
     ["default_pipeline 'ghost' names no pipeline"]),
    ('default_pipeline = "a"\n', ["at least one [[pipeline]]"]),
    ("[[pipeline]\n", ["not valid TOML"]),
])
def test_structural_mistakes(tmp_path: Path, text: str, words: list[str]) -> None:
    """Missing model or code, a default naming nothing, no pipelines, bad TOML: ConfigError."""
    with pytest.raises(ConfigError) as caught:
        catalog_from(tmp_path, text)
    for word in words:
        assert word in str(caught.value)


def test_default_pipeline_may_name_an_alias(tmp_path: Path) -> None:
    """default_pipeline naming an alias selects that alias's pipeline."""
    catalog = catalog_from(tmp_path, 'default_pipeline = "x"\n' + BASE.format(
        first="", second='aliases = ["x"]'))
    assert catalog.default.code == "second"


def test_missing_pipelines_file_is_a_config_error(tmp_path: Path) -> None:
    """VOXHOOK_PIPELINES naming no file: ConfigError with the path."""
    settings = Settings.from_env({"VOXHOOK_PIPELINES": str(tmp_path / "absent.toml")})
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_catalog(settings)


@pytest.mark.parametrize(("env", "name"), [
    ({"VOXHOOK_BILLING": "maybe"}, "VOXHOOK_BILLING"),
    ({"VOXHOOK_MAX_DOWNLOAD_MB": "abc"}, "VOXHOOK_MAX_DOWNLOAD_MB"),
    ({"VOXHOOK_MAX_DOWNLOAD_MB": "0"}, "VOXHOOK_MAX_DOWNLOAD_MB"),
    ({"VOXHOOK_API_WORKERS": "two"}, "VOXHOOK_API_WORKERS"),
    ({"VOXHOOK_DEVICE": "tpu"}, "VOXHOOK_DEVICE"),
])
def test_settings_errors_name_the_variable(env: dict[str, str], name: str) -> None:
    """A bad environment value raises ConfigError naming the variable and the value."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert name in str(caught.value)
    assert next(iter(env.values())) in str(caught.value)


def test_settings_from_env_reads_values(tmp_path: Path) -> None:
    """Good values are read: billing on, download cap in MB, allowlist split on commas."""
    settings = Settings.from_env({
        "VOXHOOK_BILLING": " ON ", "VOXHOOK_MAX_DOWNLOAD_MB": "5",
        "VOXHOOK_FETCH_ALLOWLIST": " 10.0.0.0/8, media.local ,,",
        "VOXHOOK_DATA_DIR": str(tmp_path)})
    assert settings.billing_enforced is True
    assert settings.fetch_limits == FetchLimits(max_bytes=5 * 1024 * 1024)
    assert settings.fetch_allowlist == ("10.0.0.0/8", "media.local")
    assert settings.database_url == f"sqlite:///{(tmp_path / 'voxhook.db').resolve()}"
    assert Settings.from_env(settings.environment()) == settings


def test_aliases_must_be_a_list() -> None:
    """BUG: ``aliases = "whisper"`` (a string, not a list) is accepted and split into the
    one-letter aliases w, h, i, s, p, e, r, because _parse_pipeline does
    ``tuple(str(a) for a in entry.get("aliases", ()))``. It must be a ConfigError."""
    from app.transcriptions.pipelines import parse_catalog

    document = {"pipeline": [{"code": "a", "model": "base", "aliases": "whisper"}]}
    with pytest.raises(ConfigError, match=r"pipeline #1 \(a\).*aliases"):
        parse_catalog(document, Settings(), source="f.toml")


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_price_is_a_config_error(tmp_path: Path, price: str) -> None:
    """BUG: a price of "NaN" or "Infinity" escapes as decimal.InvalidOperation (from the
    ``price < 0`` comparison / ``quantize``) instead of a ConfigError naming the pipeline,
    so ``voxhook`` prints a traceback instead of the message."""
    with pytest.raises(ConfigError, match=r"pipeline #1 \(first\).*price_per_minute_usd"):
        catalog_from(tmp_path, BASE.format(first=f'price_per_minute_usd = "{price}"',
                                           second=""))


@pytest.mark.parametrize("decoding", [
    'temperature = "hot"', 'beam_size = "five"', 'max_new_tokens = "48"',
    'batch_size = [1, 2]',
])
def test_wrongly_typed_decoding_option_is_a_config_error(tmp_path: Path, decoding: str) -> None:
    """BUG: a decoding option of the wrong type escapes _parse_decoding as a bare ValueError or
    TypeError (from float()/int()/``<``) whose message names neither file nor pipeline."""
    with pytest.raises(ConfigError, match=r"pipeline #2 \(second\) \[decoding\]"):
        catalog_from(tmp_path, BASE.format(first="", second="[pipeline.decoding]\n" + decoding))


def test_bad_compute_type_in_environment_is_refused() -> None:
    """BUG: VOXHOOK_COMPUTE_TYPE is not validated by Settings.from_env (VOXHOOK_DEVICE is), and
    the built-in pipeline takes it unchecked, so a typo surfaces only when the worker fails
    to load the model. It must be a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="VOXHOOK_COMPUTE_TYPE"):
        load_catalog(Settings.from_env({"VOXHOOK_COMPUTE_TYPE": "fp13"}))


def test_the_example_pipelines_file_is_valid() -> None:
    """deploy/pipelines.example.toml, which operators copy, loads as documented."""
    example = REPO / "deploy" / "pipelines.example.toml"
    catalog = load_catalog(Settings.from_env({"VOXHOOK_PIPELINES": str(example)}))
    assert catalog.default_code == "whisper-large-v3"
    assert [p.can_diarize for p in catalog.pipelines] == [True, False, False]
    assert catalog.find("gpt-4o-transcribe-diarize").diarization == DiarizationConfig(
        "pyannote/speaker-diarization-community-1", "auto")
