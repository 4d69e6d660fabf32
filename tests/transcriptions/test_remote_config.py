"""The pipelines file's remote engines and AI analysis: what a valid file yields, the
capabilities the pipelines list shows, and a ConfigError naming the place of each mistake."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from app.config import ConfigError, Settings
from app.errors import ValidationFailed
from app.transcriptions.analysis_catalog import DEFAULT_ANALYSES
from app.transcriptions.pipelines import check_capabilities, parse_catalog

FILE = '''
[analysis]
base_url = "http://ollama.internal:11434/v1"
model = "qwen2.5:7b-instruct"
api_key_env = "OLLAMA_KEY"
context_tokens = 32768
[analysis.analyses.risks]
description = "Risks raised"
prompt = "List the risks raised."
schema = '{"type": "object", "properties": {"risks": {"type": "array"}}, "required": ["risks"]}'

[[pipeline]]
code = "voxtral"
aliases = ["voxtral-mini-transcribe"]
price_per_minute_usd = "0.0296"
price_per_analysis_usd = "0.0015"
analyses = ["summary", "action_items", "risks"]
languages = ["en", "fr"]
[pipeline.engine]
base_url = "http://vllm.internal:8000/v1/"
model = "mistralai/Voxtral-Mini-3B-2507"
api_key_env = "VLLM_API_KEY"
words = false
max_piece_seconds = 30
concurrency = 4
allow_private_network = true
[pipeline.diarization]
model = "/models/pyannote"

[[pipeline]]
code = "local"
model = "base"
analyses = []
'''


def catalog(text: str = FILE):
    return parse_catalog(tomllib.loads(text), Settings(), "pipelines.toml")


def test_a_remote_pipeline_with_analysis():
    parsed = catalog()
    voxtral, local = parsed.pipelines
    engine = voxtral.engine
    assert engine is not None and engine.base_url == "http://vllm.internal:8000/v1"
    assert engine.url("/audio/transcriptions") == (
        "http://vllm.internal:8000/v1/audio/transcriptions")
    assert (engine.model, engine.api_key_env, engine.words, engine.max_piece_seconds,
            engine.concurrency, engine.allow_private_network) == (
        "mistralai/Voxtral-Mini-3B-2507", "VLLM_API_KEY", False, 30.0, 4, True)
    assert voxtral.model == engine.model and voxtral.engine_kind == "openai-compatible"
    assert voxtral.price_per_analysis_usd == Decimal("0.0015")
    assert voxtral.analyses == ("summary", "action_items", "risks")
    assert local.engine is None and local.analyses == ()
    assert local.price_per_analysis_usd == 0
    endpoint = parsed.analysis
    assert endpoint is not None and endpoint.context_tokens == 32768
    assert list(endpoint.definitions) == [a.name for a in DEFAULT_ANALYSES] + ["risks"]
    assert endpoint.definitions["risks"].schema["required"] == ["risks"]


def test_the_listing_shows_engine_and_capabilities():
    voxtral, local = catalog().pipelines
    listed = voxtral.listing("local")
    assert listed["engine"] == {"kind": "openai-compatible",
                                "model": "mistralai/Voxtral-Mini-3B-2507"}
    assert listed["capabilities"] == {"words": False, "speakers": True,
                                      "languages": ["en", "fr"],
                                      "analysis": ["summary", "action_items", "risks"]}
    assert listed["default"] is False
    assert local.listing("local")["engine"] == {"kind": "faster-whisper", "model": "base"}
    assert local.listing("local")["capabilities"]["words"] is True


def test_every_pipeline_offers_every_analysis_by_default():
    parsed = catalog(FILE.replace('analyses = ["summary", "action_items", "risks"]\n', ""))
    assert len(parsed.pipelines[0].analyses) == len(DEFAULT_ANALYSES) + 1


def test_requests_may_ask_only_for_offered_analyses():
    voxtral, local = catalog().pipelines
    check_capabilities(voxtral, {"analysis": ["summary", "risks"]})
    with pytest.raises(ValidationFailed) as refused:
        check_capabilities(voxtral, {"analysis": ["topics"]})
    assert "offers: summary, action_items, risks" in str(refused.value.fields["analysis"])
    with pytest.raises(ValidationFailed) as refused:
        check_capabilities(local, {"analysis": ["summary"]})
    assert "offers: none" in str(refused.value.fields["analysis"])


ENGINE = '''
[[pipeline]]
code = "remote"
{pipeline}
[pipeline.engine]
base_url = "http://vllm:8000/v1"
model = "m"
{engine}
'''
ANALYSIS = '''
[analysis]
base_url = "http://llm:8000/v1"
model = "m"
{analysis}
[[pipeline]]
code = "p"
model = "base"
{pipeline}
'''


@pytest.mark.parametrize(("template", "parts", "message"), [
    (ENGINE, {"engine": "words = 1"}, "[engine]: words must be true or false"),
    (ENGINE, {"engine": 'response_format = "srt"'}, "response_format must be one of"),
    (ENGINE, {"engine": 'response_format = "json"\nwords = true'}, "carries no word timings"),
    (ENGINE, {"engine": "max_piece_seconds = 1"}, "max_piece_seconds must be a number from 5"),
    (ENGINE, {"engine": "colour = 1"}, "[engine]: unknown key(s) colour"),
    (ENGINE, {"engine": "retries = -1"}, "retries must be a whole number from 0 to 10"),
    (ENGINE, {"engine": "concurrency = 0"}, "concurrency must be a whole number from 1"),
    (ENGINE, {"engine": "timeout_s = \"ten\""}, "timeout_s must be a number"),
    (ENGINE, {"engine": 'api_key_env = "sk-live abc"'}, "never put the key itself here"),
    (ENGINE, {"engine": "allow_private_network = 1"}, "allow_private_network must be true"),
    (ENGINE, {"pipeline": 'model = "base"'}, "names its model in that table"),
    (ENGINE.replace('base_url = "http://vllm:8000/v1"', 'base_url = "ftp://vllm/v1"'), {},
     "base_url must be an http or https URL"),
    (ENGINE.replace('base_url = "http://vllm:8000/v1"', ""), {}, "'base_url' is required"),
    (ENGINE.replace('base_url = "http://vllm:8000/v1"', 'base_url = "http://v/v1?x=1"'), {},
     "must not have a query"),
    (ENGINE.replace('model = "m"', ""), {}, "[engine]: 'model' is required"),
    (ENGINE, {"pipeline": 'analyses = ["summary"]'}, "analyses need an [analysis] table"),
    (ENGINE, {"pipeline": 'price_per_analysis_usd = 0.5'},
     'write price_per_analysis_usd as a string ("0.5")'),
    (ENGINE, {"pipeline": 'price_per_analysis_usd = "-1"'},
     "price_per_analysis_usd must be >= 0"),
    (ANALYSIS, {"analysis": 'structured_output = "xml"'},
     "structured_output must be one of json_schema, json_object, none"),
    (ANALYSIS, {"analysis": "context_tokens = 1000\nmax_output_tokens = 600"},
     "must be at most half of context_tokens"),
    (ANALYSIS, {"pipeline": 'analyses = ["summary", "poetry"]'},
     "unknown analysis poetry; known: summary, key_points"),
    (ANALYSIS, {"pipeline": 'analyses = "summary"'}, "analyses must be a list"),
    (ANALYSIS, {"analysis": '[analysis.analyses.x]\nschema = \'{"type": "object"}\''},
     "[analysis.analyses.x]: 'prompt' is required"),
    (ANALYSIS, {"analysis": '[analysis.analyses.x]\nprompt = "p"\nschema = "{nope"'},
     "schema is not valid JSON"),
    (ANALYSIS, {"analysis": '[analysis.analyses.x]\nprompt = "p"\nschema = \'{"type": "array"}\''},
     'schema must be a JSON schema whose type is "object"'),
    (ANALYSIS, {"analysis": '[analysis.analyses.x]\nprompt = "p"\n'
                '[analysis.analyses.x.schema]\ntype = "object"\nrequired = 5'},
     "schema is not a valid JSON schema"),
    (ANALYSIS, {"analysis": '[analysis.analyses."a b"]\nprompt = "p"'},
     "an analysis name is letters, digits"),
])
def test_mistakes_name_their_place(template: str, parts: dict[str, str], message: str):
    text = template.format(**{"pipeline": "", "engine": "", "analysis": "", **parts})
    with pytest.raises(ConfigError) as error:
        catalog(text)
    assert message in str(error.value)
    assert str(error.value).startswith("pipelines.toml: ")


def test_a_default_analysis_can_be_reworded():
    text = ANALYSIS.format(analysis='[analysis.analyses.summary]\nprompt = "Two lines."',
                           pipeline="")
    summary = catalog(text).analysis.definitions["summary"]
    assert summary.prompt == "Two lines." and summary.schema == DEFAULT_ANALYSES[0].schema
